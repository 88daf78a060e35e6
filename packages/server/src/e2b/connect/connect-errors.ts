import { Code, ConnectError } from '@connectrpc/connect';
import type { FastifyBaseLogger } from 'fastify';
import { SandpoolError, type ErrorCode } from '../../errors/sandpool-error.js';

/**
 * The Connect code each sandpool error travels as, chosen for the exception the e2b SDK raises
 * from it: NotFound → NotFoundError / FileNotFoundError (and `false` from `exists`, `kill`),
 * InvalidArgument → InvalidArgumentError, Unavailable → the SDK's "sandbox is not running"
 * errors, ResourceExhausted → RateLimitError.
 */
const CONNECT_CODE = {
  invalid_request: Code.InvalidArgument,
  invalid_path: Code.InvalidArgument,
  unauthorized: Code.Unauthenticated,
  forbidden_origin: Code.PermissionDenied,
  egress_not_permitted: Code.PermissionDenied,
  session_not_found: Code.Unavailable,
  file_not_found: Code.NotFound,
  template_not_found: Code.NotFound,
  context_not_found: Code.NotFound,
  process_not_found: Code.NotFound,
  session_lost: Code.Unavailable,
  payload_too_large: Code.ResourceExhausted,
  internal_error: Code.Internal,
  capacity_exhausted: Code.ResourceExhausted,
  runtime_unavailable: Code.Unavailable,
  port_not_listening: Code.Unavailable,
} as const satisfies Record<ErrorCode, Code>;

/** The Connect code of a sandpool error code. */
export function connectCodeOf(code: ErrorCode): Code {
  return CONNECT_CODE[code];
}

/**
 * Any failure as the ConnectError the Connect server answers with (its JSON error body is
 * `{"code": "not_found", "message": …}`); the sandpool code stays in the message so logs and
 * users can match it to the v1 API's. A bug is logged with its stack and answered as internal.
 */
export function toConnectError(error: unknown, log?: FastifyBaseLogger): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof SandpoolError) {
    return new ConnectError(`${error.code}: ${error.message}`, connectCodeOf(error.code));
  }
  log?.error({ err: error }, 'unexpected error in an envd Connect handler');
  return new ConnectError(
    'internal_error: sandpool failed on this request; the worker logged it. Retrying will not help.',
    Code.Internal,
  );
}

/** Runs `operation`, turning what it throws into the matching ConnectError. */
export async function asConnect<T>(
  operation: () => Promise<T> | T,
  log?: FastifyBaseLogger,
): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw toConnectError(error, log);
  }
}

/**
 * The one error registry of the public API: every failure the service reports has one of these
 * codes, one HTTP status, and travels as `{"error": {"code", "message"}}`.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_path: 400,
  unauthorized: 401,
  forbidden_origin: 403,
  egress_not_permitted: 403,
  session_not_found: 404,
  file_not_found: 404,
  template_not_found: 404,
  context_not_found: 404,
  process_not_found: 404,
  session_lost: 410,
  payload_too_large: 413,
  internal_error: 500,
  /** A preview URL's port has no server listening in the sandbox. */
  port_not_listening: 502,
  capacity_exhausted: 503,
  runtime_unavailable: 503,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** An error meant for the client: its message says what happened and what to do. */
export class SandpoolError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Seconds a client should wait before retrying (sets `Retry-After`). */
    readonly retryAfterSeconds?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'SandpoolError';
    this.status = ERROR_STATUS[code];
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_STATUS, value);
}

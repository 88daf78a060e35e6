import type { FastifyError, FastifyInstance } from 'fastify';
import { SandpoolError } from '../errors/sandpool-error.js';
import { fromFastifyError } from '../http/error-handler.js';

/** E2B's error body (its OpenAPI `Error`): the HTTP status again, and a message. */
export interface E2bErrorBody {
  code: number;
  message: string;
}

/** Which E2B face answers: the control plane (REST API) or the in-sandbox routes (envd, Jupyter). */
export type E2bFaceKind = 'control' | 'sandbox';

/**
 * The status E2B answers with for a sandpool failure. Inside a sandbox, a session that is gone
 * answers 502 as E2B's proxy does, which the SDK reads as "the sandbox is not running".
 */
export function e2bStatusOf(error: SandpoolError, face: E2bFaceKind): number {
  if (face === 'sandbox' && (error.code === 'session_not_found' || error.code === 'session_lost'))
    return 502;
  if (face === 'control' && error.code === 'session_lost') return 404;
  return error.status;
}

/**
 * Answers every failure of an E2B face in E2B's shape, so the SDK maps it to its error classes
 * (401 AuthenticationError, 404 NotFoundError, 400 InvalidArgumentError, 503 ServiceBusyError...).
 */
export function installE2bErrors(app: FastifyInstance, face: E2bFaceKind): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const failure = error instanceof SandpoolError ? error : fromFastifyError(error);
    const status = e2bStatusOf(failure, face);
    if (status >= 500 && status !== 502 && failure.code !== 'capacity_exhausted')
      request.log.error({ err: error }, 'E2B request failed');
    else request.log.info({ code: failure.code }, failure.message);
    if (failure.retryAfterSeconds !== undefined)
      reply.header('Retry-After', String(failure.retryAfterSeconds));
    if (!request.raw.complete) reply.header('connection', 'close');
    const body: E2bErrorBody = { code: status, message: failure.message };
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const body: E2bErrorBody = {
      code: 404,
      message: `sandpool's E2B face has no route ${request.method} ${request.url.split('?')[0]}; docs/e2b.md lists what it serves.`,
    };
    return reply.code(404).send(body);
  });
}

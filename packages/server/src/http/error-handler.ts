import type { FastifyError, FastifyInstance } from 'fastify';
import { SandpoolError, type ErrorCode } from '../errors/sandpool-error.js';

/** Fastify's own failures (schema, body parsing, size) in the public error shape. */
export function fromFastifyError(error: FastifyError): SandpoolError {
  if (error.validation) {
    return new SandpoolError(
      'invalid_request',
      describeValidation(error.validationContext ?? 'request', error.validation),
    );
  }
  const byCode: Record<string, [ErrorCode, string]> = {
    FST_ERR_CTP_BODY_TOO_LARGE: [
      'payload_too_large',
      'The request body is larger than this server accepts.',
    ],
    FST_ERR_CTP_INVALID_MEDIA_TYPE: [
      'invalid_request',
      'Unsupported Content-Type; send application/json.',
    ],
    FST_ERR_CTP_EMPTY_JSON_BODY: [
      'invalid_request',
      'The JSON body is empty; send {} for no options.',
    ],
    FST_ERR_CTP_INVALID_JSON_BODY: ['invalid_request', 'The body is not valid JSON.'],
  };
  const known = byCode[error.code];
  if (known) return new SandpoolError(known[0], known[1]);
  if (error.statusCode === 400 || error instanceof SyntaxError) {
    return new SandpoolError('invalid_request', `Bad request: ${error.message}`);
  }
  if (error.statusCode === 413) return new SandpoolError('payload_too_large', error.message);
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new SandpoolError('invalid_request', `Bad request: ${error.message}`);
  }
  return internalError(error);
}

/**
 * What a failure nobody foresaw becomes: 500, never `Retry-After` (retrying a bug does not help),
 * and a message that says so. 503 is kept for a runtime that is really down.
 */
export function internalError(error: unknown): SandpoolError {
  const detail = error instanceof Error ? error.message : String(error);
  return new SandpoolError(
    'internal_error',
    `Internal error (a bug in sandpool, not in your request; the server logged it with its stack, please report it): ${detail}`,
    undefined,
    { cause: error },
  );
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const failure = error instanceof SandpoolError ? error : fromFastifyError(error);
    // The stack goes to the log (pino's `err` serializer), never to the client.
    if (failure.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: failure.code }, failure.message);
    if (failure.retryAfterSeconds !== undefined)
      reply.header('Retry-After', String(failure.retryAfterSeconds));
    // An upload refused midway leaves body bytes on the socket: close it so they are not read as
    // the next request.
    if (!request.raw.complete) reply.header('connection', 'close');
    return reply.code(failure.status).send(failure.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const failure = new SandpoolError(
      'invalid_request',
      `No route ${request.method} ${request.url.split('?')[0]}; the routes are listed in the README (API section).`,
    );
    return reply.code(404).send(failure.toBody());
  });
}

interface ValidationIssue {
  instancePath: string;
  message?: string;
  keyword: string;
  params: Record<string, unknown>;
}

/** Turns schema failures into one sentence that names each bad field. */
export function describeValidation(where: string, issues: readonly ValidationIssue[]): string {
  const parts = issues.map((issue) => {
    const field = issue.instancePath ? `${where}${issue.instancePath.replaceAll('/', '.')}` : where;
    if (issue.keyword === 'additionalProperties')
      return `unknown field "${String(issue.params.additionalProperty)}" in ${field}`;
    if (issue.keyword === 'required')
      return `${field} is missing "${String(issue.params.missingProperty)}"`;
    if (issue.keyword === 'pattern' && String(issue.params.pattern).includes('u0000'))
      return `${field} must not contain NUL bytes`;
    return `${field} ${issue.message ?? 'is invalid'}`;
  });
  return `Invalid request: ${[...new Set(parts)].join('; ')}. See the API section of the README.`;
}

/**
 * The error codes of sandpool's public HTTP API (ARCHITECTURE.md), each with one HTTP status.
 * The SDK maps every one back to its own subclass of {@link SandboxError}.
 */
export type ApiErrorCode =
  | 'invalid_request'
  | 'invalid_path'
  | 'unauthorized'
  | 'forbidden_origin'
  | 'egress_not_permitted'
  | 'session_not_found'
  | 'file_not_found'
  | 'template_not_found'
  | 'context_not_found'
  | 'process_not_found'
  | 'session_lost'
  | 'payload_too_large'
  | 'capacity_exhausted'
  | 'runtime_unavailable'
  | 'internal_error';

/**
 * Codes the SDK itself raises: `connection_failed` when no HTTP answer arrived (see
 * {@link ConnectionError}), `invalid_response` when the answer does not follow the API, and
 * `http_error` for a status the API does not define (a proxy's 502, say).
 */
export type ClientErrorCode = 'connection_failed' | 'invalid_response' | 'http_error';

/** Every code a {@link SandboxError} can carry. */
export type SandboxErrorCode = ApiErrorCode | ClientErrorCode;

/** Options every {@link SandboxError} constructor takes. */
export interface SandboxErrorOptions {
  /** HTTP status of the answer; absent when no answer arrived. */
  status?: number;
  /** The lower-level error that caused this one. */
  cause?: unknown;
}

/**
 * Base of every error the SDK throws (besides the caller's own abort reason, which is rethrown
 * unchanged). Catch it to handle all sandpool failures; check `instanceof` a subclass, or
 * {@link SandboxError.code}, to handle one.
 */
export class SandboxError extends Error {
  /** Machine-readable code from the API's error table, or one of the {@link ClientErrorCode}s. */
  readonly code: SandboxErrorCode;
  /** HTTP status of the answer; `undefined` when no answer arrived. */
  readonly status: number | undefined;

  constructor(code: SandboxErrorCode, message: string, options: SandboxErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SandboxError';
    this.code = code;
    this.status = options.status;
  }
}

/** 400 `invalid_request`: the body, query or a header failed the API's schema. */
export class InvalidRequestError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('invalid_request', message, { status: 400, ...options });
    this.name = 'InvalidRequestError';
  }
}

/** 400 `invalid_path`: a file path is empty, has NUL, or escapes the sandbox's writable roots. */
export class InvalidPathError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('invalid_path', message, { status: 400, ...options });
    this.name = 'InvalidPathError';
  }
}

/**
 * 401 `unauthorized`: the server has an API key and the request lacked it or had another one.
 * Pass `apiKey` or set `SANDPOOL_API_KEY`.
 */
export class AuthError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('unauthorized', message, { status: 401, ...options });
    this.name = 'AuthError';
  }
}

/** 404 `session_not_found`: the session is unknown, expired or already closed. */
export class SessionNotFoundError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('session_not_found', message, { status: 404, ...options });
    this.name = 'SessionNotFoundError';
  }
}

/** 404 `process_not_found`: no process with that pid or tag in the session (it may have been forgotten). */
export class ProcessNotFoundError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('process_not_found', message, { status: 404, ...options });
    this.name = 'ProcessNotFoundError';
  }
}

/** 404 `file_not_found`: no such file in the sandbox. */
export class FileNotFoundError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('file_not_found', message, { status: 404, ...options });
    this.name = 'FileNotFoundError';
  }
}

/** 404 `template_not_found`: the server serves no such template (`listTemplates` shows which it does). */
export class TemplateNotFoundError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('template_not_found', message, { status: 404, ...options });
    this.name = 'TemplateNotFoundError';
  }
}

/** 404 `context_not_found`: no such code context in the session (deleted, or never created). */
export class ContextNotFoundError extends SandboxError {
  constructor(message: string, options: SandboxErrorOptions = {}) {
    super('context_not_found', message, { status: 404, ...options });
    this.name = 'ContextNotFoundError';
  }
}

/** 410 `session_lost`: the session's container or worker died; the session cannot come back. */
export class SessionLostError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('session_lost', message, { status: 410, ...options });
    this.name = 'SessionLostError';
  }
}

/**
 * 403 `forbidden_origin`: the server refused the request's `Host` or `Origin` (a browser page on
 * another site, or a name the server was not told about). The message names the setting
 * (`--allowed-hosts`, `--allowed-origins`) to change on the server.
 */
export class ForbiddenOriginError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('forbidden_origin', message, { status: 403, ...options });
    this.name = 'ForbiddenOriginError';
  }
}

/**
 * 403 `egress_not_permitted`: the session's `network` asks for hosts beyond what the worker allows
 * (`--egress-allow-max`), or the worker gives sessions no network. Narrow the list.
 */
export class EgressNotPermittedError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('egress_not_permitted', message, { status: 403, ...options });
    this.name = 'EgressNotPermittedError';
  }
}

/** 413 `payload_too_large`: an upload or a request body is over the server's limit. */
export class PayloadTooLargeError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('payload_too_large', message, { status: 413, ...options });
    this.name = 'PayloadTooLargeError';
  }
}

/** Options of {@link CapacityError}. */
export interface CapacityErrorOptions extends SandboxErrorOptions {
  /** How long the server asked to wait before retrying (its `Retry-After`), in milliseconds. */
  retryAfterMs?: number;
}

/**
 * 503 `capacity_exhausted`: no container can be had now. `Sandbox.create` retries this one by
 * itself until its `createTimeoutMs` runs out.
 */
export class CapacityError extends SandboxError {
  /** The server's `Retry-After` in milliseconds; `undefined` when it sent none. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: CapacityErrorOptions = {}) {
    super('capacity_exhausted', message, { status: 503, ...options });
    this.name = 'CapacityError';
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** 503 `runtime_unavailable`: the server's container engine (Docker) does not answer. */
export class RuntimeUnavailableError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('runtime_unavailable', message, { status: 503, ...options });
    this.name = 'RuntimeUnavailableError';
  }
}

/**
 * 500 `internal_error`: a bug in the server, logged there with its stack. Nothing the caller
 * sent caused it and waiting will not fix it, so the SDK never retries it; report it with the
 * message (and the server's log line at that time).
 */
export class InternalError extends SandboxError {
  constructor(message: string, options?: SandboxErrorOptions) {
    super('internal_error', message, { status: 500, ...options });
    this.name = 'InternalError';
  }
}

/**
 * No HTTP answer arrived: the server is down, the address is wrong, the connection broke
 * mid-stream, or the request timed out. {@link ConnectionError.url} names the URL that failed.
 */
export class ConnectionError extends SandboxError {
  /** The URL the SDK tried to reach. */
  readonly url: string;

  constructor(url: string, reason: string, options: Omit<SandboxErrorOptions, 'status'> = {}) {
    super(
      'connection_failed',
      `cannot reach sandpool at ${url}: ${reason}; is a worker running? start one with \`npx sandpool serve\``,
      options,
    );
    this.name = 'ConnectionError';
    this.url = url;
  }
}

const API_ERRORS: Record<
  ApiErrorCode,
  (message: string, options: CapacityErrorOptions) => SandboxError
> = {
  invalid_request: (m, o) => new InvalidRequestError(m, o),
  invalid_path: (m, o) => new InvalidPathError(m, o),
  unauthorized: (m, o) => new AuthError(m, o),
  forbidden_origin: (m, o) => new ForbiddenOriginError(m, o),
  egress_not_permitted: (m, o) => new EgressNotPermittedError(m, o),
  session_not_found: (m, o) => new SessionNotFoundError(m, o),
  file_not_found: (m, o) => new FileNotFoundError(m, o),
  template_not_found: (m, o) => new TemplateNotFoundError(m, o),
  context_not_found: (m, o) => new ContextNotFoundError(m, o),
  process_not_found: (m, o) => new ProcessNotFoundError(m, o),
  session_lost: (m, o) => new SessionLostError(m, o),
  payload_too_large: (m, o) => new PayloadTooLargeError(m, o),
  capacity_exhausted: (m, o) => new CapacityError(m, o),
  runtime_unavailable: (m, o) => new RuntimeUnavailableError(m, o),
  internal_error: (m, o) => new InternalError(m, o),
};

/** Whether `value` is one of the API's error codes. */
export function isApiErrorCode(value: unknown): value is ApiErrorCode {
  return typeof value === 'string' && Object.hasOwn(API_ERRORS, value);
}

/** Builds the typed error for an API error code (from a body or an NDJSON `error` event). */
export function errorFromCode(
  code: ApiErrorCode,
  message: string,
  options: CapacityErrorOptions = {},
): SandboxError {
  return API_ERRORS[code](message, options);
}

/** What {@link errorFromResponse} needs of an HTTP answer; a plain object, so it tests easily. */
export interface ErrorResponseParts {
  /** HTTP status. */
  status: number;
  /** The body as text (may be empty or not JSON). */
  bodyText: string;
  /** The `Retry-After` header, if any. */
  retryAfter: string | null;
  /** The method and URL of the request, for messages. */
  request: string;
}

/**
 * Maps a non-2xx answer to its typed error. The body `{"error": {"code", "message"}}` decides;
 * without one (a proxy's page, an old server) the status alone does, as closely as it can.
 */
export function errorFromResponse(parts: ErrorResponseParts, nowMs = Date.now()): SandboxError {
  const { status } = parts;
  const retryAfterMs = parseRetryAfterMs(parts.retryAfter, nowMs);
  const body = parseErrorBody(parts.bodyText);
  if (body !== undefined && isApiErrorCode(body.code)) {
    return errorFromCode(body.code, body.message, { status, retryAfterMs });
  }
  const detail = body?.message ?? summarize(parts.bodyText);
  const message = `${parts.request} answered ${status}${detail === '' ? '' : `: ${detail}`}`;
  switch (status) {
    case 400:
      return new InvalidRequestError(message, { status });
    case 401:
      return new AuthError(message, { status });
    case 410:
      return new SessionLostError(message, { status });
    case 413:
      return new PayloadTooLargeError(message, { status });
    case 500:
      return new InternalError(message, { status });
    case 503:
      // Only a capacity refusal carries Retry-After; an engine outage does not.
      return retryAfterMs !== undefined
        ? new CapacityError(message, { status, retryAfterMs })
        : new RuntimeUnavailableError(message, { status });
    default:
      return new SandboxError('http_error', message, { status });
  }
}

/**
 * Parses a `Retry-After` header (delay in seconds, or an HTTP date) into milliseconds from
 * `nowMs`; `undefined` when absent or unreadable.
 */
export function parseRetryAfterMs(header: string | null, nowMs = Date.now()): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

function parseErrorBody(text: string): { code: unknown; message: string } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || !('error' in parsed)) return undefined;
  const error: unknown = parsed.error;
  if (typeof error !== 'object' || error === null) return undefined;
  const code = 'code' in error ? error.code : undefined;
  const message = 'message' in error && typeof error.message === 'string' ? error.message : '';
  return { code, message: message === '' ? String(code) : message };
}

function summarize(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > 200 ? `${oneLine.slice(0, 200)}…` : oneLine;
}

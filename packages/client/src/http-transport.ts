import { ConnectionError, errorFromResponse, SandboxError } from './errors.js';

/** The address of the sandpool server (default `http://127.0.0.1:5000`, env `SANDPOOL_URL`). */
export const DEFAULT_URL = 'http://127.0.0.1:5000';

/** Default time a control call (create, info, list, keep-alive, close, health) may take. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** How to reach a sandpool worker or coordinator; both answer the same API. */
export interface ConnectionOptions {
  /**
   * Base URL of the worker or coordinator. Defaults to the `SANDPOOL_URL` environment variable,
   * else `http://127.0.0.1:5000`.
   */
  url?: string;
  /**
   * API key sent as `Authorization: Bearer <key>`. Defaults to the `SANDPOOL_API_KEY`
   * environment variable; none is sent when neither is set.
   */
  apiKey?: string;
  /**
   * Time limit for control calls (create, info, list, keep-alive, close, health, list and
   * remove files), in milliseconds; default 30000. Commands and file transfers are bounded by
   * the server's exec timeout and by the `signal` you pass instead, since they may run long.
   */
  requestTimeoutMs?: number;
  /** The `fetch` to use; defaults to the global one. For proxies, tracing or tests. */
  fetch?: typeof globalThis.fetch;
}

/** {@link ConnectionOptions} with the environment and defaults applied. */
export interface ResolvedConnection {
  url: string;
  apiKey: string | undefined;
  requestTimeoutMs: number;
  fetch: typeof globalThis.fetch;
}

/** Applies `SANDPOOL_URL`, `SANDPOOL_API_KEY` and the defaults to `options`. */
export function resolveConnection(
  options: ConnectionOptions = {},
  env: Record<string, string | undefined> = process.env,
): ResolvedConnection {
  const url = nonEmpty(options.url) ?? nonEmpty(env.SANDPOOL_URL) ?? DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new SandboxError('invalid_request', `not a URL: "${url}" (url / SANDPOOL_URL)`, {
      cause: error,
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new SandboxError('invalid_request', `the sandpool URL must be http(s): "${url}"`);
  }
  return {
    // A trailing slash would double up with the API's paths.
    url: url.replace(/\/+$/, ''),
    apiKey: nonEmpty(options.apiKey) ?? nonEmpty(env.SANDPOOL_API_KEY),
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    fetch: options.fetch ?? globalThis.fetch,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** One HTTP call of the API. */
export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path below the base URL, starting with `/`. */
  path: string;
  /** Query parameters. */
  query?: Record<string, string>;
  /** A JSON body (snake_case, as on the wire). */
  json?: unknown;
  /** A raw body; a stream is sent chunked (`duplex: 'half'`). */
  body?: Uint8Array | Blob | ReadableStream<Uint8Array>;
  /** Extra headers. */
  headers?: Record<string, string>;
  /** The `Accept` header; default `application/json`. */
  accept?: string;
  /** Limit for the whole call in milliseconds; `null` for none. Default `requestTimeoutMs`. */
  timeoutMs?: number | null;
  /** The caller's abort signal. */
  signal?: AbortSignal;
  /** Statuses besides 2xx that are answers, not errors (`/health` answers 503 when unhealthy). */
  okStatuses?: readonly number[];
}

const USER_AGENT = 'sandpool-client/0.1.0';

/**
 * Sends the API's requests: base URL, `Authorization`, time limits, and the mapping of every
 * failure to a typed {@link SandboxError}. One per `Sandbox` or `SandpoolClient`; holds no state
 * besides its settings.
 */
export class HttpTransport {
  constructor(readonly connection: ResolvedConnection) {}

  /** The base URL requests go to. */
  get url(): string {
    return this.connection.url;
  }

  /** Sends `spec` and returns the answer; throws a typed error for a non-2xx answer. */
  async request(spec: RequestSpec): Promise<Response> {
    const url = this.urlFor(spec.path, spec.query);
    const headers: Record<string, string> = {
      accept: spec.accept ?? 'application/json',
      'user-agent': USER_AGENT,
      ...spec.headers,
    };
    if (this.connection.apiKey !== undefined) {
      headers.authorization = `Bearer ${this.connection.apiKey}`;
    }
    let body: RequestInit['body'];
    if (spec.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(spec.json);
    } else if (spec.body !== undefined) {
      headers['content-type'] ??= 'application/octet-stream';
      body = spec.body;
    }
    const timeoutMs = this.timeoutFor(spec);
    const timeout = timeoutMs === null ? undefined : AbortSignal.timeout(timeoutMs);
    const signals = [spec.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
    const init: RequestInit & { duplex?: 'half' } = {
      method: spec.method,
      headers,
      body,
      signal: signals.length === 0 ? undefined : AbortSignal.any(signals),
      // Node's fetch needs this to send a stream as the body (the answer comes after it).
      ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
    };
    const label = `${spec.method} ${url}`;
    let response: Response;
    try {
      response = await this.connection.fetch(url, init);
    } catch (error) {
      throw this.networkError(error, url, spec.signal, timeoutMs);
    }
    if (response.ok || spec.okStatuses?.includes(response.status) === true) return response;
    const bodyText = await readErrorText(response);
    throw errorFromResponse({
      status: response.status,
      bodyText,
      retryAfter: response.headers.get('retry-after'),
      request: label,
    });
  }

  /** Sends `spec` and parses the JSON answer (an empty one, as from a 204, gives `undefined`). */
  async requestJson(spec: RequestSpec): Promise<unknown> {
    const response = await this.request(spec);
    const url = this.urlFor(spec.path, spec.query);
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw this.networkError(error, url, spec.signal, this.timeoutFor(spec));
    }
    if (text === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new SandboxError(
        'invalid_response',
        `${spec.method} ${url} answered ${response.status} with a body that is not JSON`,
        { status: response.status, cause: error },
      );
    }
  }

  private timeoutFor(spec: RequestSpec): number | null {
    return spec.timeoutMs === undefined ? this.connection.requestTimeoutMs : spec.timeoutMs;
  }

  /** The full URL of an API path. */
  urlFor(path: string, query?: Record<string, string>): string {
    const search = query === undefined ? '' : `?${new URLSearchParams(query).toString()}`;
    return `${this.connection.url}${path}${search}`;
  }

  /**
   * Turns a failure with no HTTP answer (or one that broke mid-body) into the error to throw:
   * the caller's own abort reason unchanged, else a {@link ConnectionError}.
   */
  networkError(
    error: unknown,
    url: string,
    signal: AbortSignal | undefined,
    timeoutMs: number | null,
  ): Error {
    if (error instanceof SandboxError) return error;
    if (signal?.aborted === true) {
      const reason: unknown = signal.reason;
      return reason instanceof Error ? reason : new DOMException('aborted', 'AbortError');
    }
    if (error instanceof DOMException && error.name === 'TimeoutError') {
      return new ConnectionError(url, `no answer within ${timeoutMs ?? 0} ms`, { cause: error });
    }
    return new ConnectionError(url, describeNetworkError(error), { cause: error });
  }
}

/** The most useful words of a fetch failure: undici hides the socket error in `cause`. */
export function describeNetworkError(error: unknown): string {
  const cause: unknown = error instanceof Error ? error.cause : undefined;
  const inner: unknown = cause instanceof AggregateError ? (cause.errors[0] as unknown) : cause;
  if (inner instanceof Error) {
    const code = 'code' in inner && typeof inner.code === 'string' ? inner.code : undefined;
    return code !== undefined && !inner.message.includes(code)
      ? `${code} ${inner.message}`
      : inner.message;
  }
  return error instanceof Error ? error.message : String(error);
}

const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** Reads an error answer's body, but never more than 64 KiB (a misbehaving proxy could send more). */
async function readErrorText(response: Response): Promise<string> {
  const body = responseBody(response);
  if (body === null) return '';
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  try {
    for await (const chunk of body) {
      bytes += chunk.byteLength;
      text += decoder.decode(chunk, { stream: true });
      // Leaving the loop cancels the rest of the body.
      if (bytes >= MAX_ERROR_BODY_BYTES) break;
    }
  } catch {
    // The status alone still says what happened.
  }
  return text + decoder.decode();
}

/** The answer's body, typed as the bytes it is (Node's types leave its chunks `any`). */
export function responseBody(response: Response): ReadableStream<Uint8Array> | null {
  return response.body as ReadableStream<Uint8Array> | null;
}

/** An error the API answered with, its message in words that say what to do. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const KEY_ITEM = 'sandpool.apiKey';

export interface RequestOptions {
  method?: string;
  /** JSON-encoded unless it is already a body a fetch takes (a File, a Blob). */
  body?: unknown;
  accept?: string;
  signal?: AbortSignal;
}

/**
 * The page's one way to the public API of the server that served it (same origin, so it works
 * alike on a worker and a coordinator). The API key, when one is needed, lives in
 * sessionStorage: it is asked for once per tab and gone when the tab closes.
 */
export class ApiClient {
  constructor(private readonly storage: Storage) {}

  get apiKey(): string | undefined {
    return this.storage.getItem(KEY_ITEM) ?? undefined;
  }

  set apiKey(key: string | undefined) {
    if (key === undefined || key === '') this.storage.removeItem(KEY_ITEM);
    else this.storage.setItem(KEY_ITEM, key);
  }

  /** Sends a request; throws an {@link ApiError} for any answer but 2xx. */
  async fetch(path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    const key = this.apiKey;
    if (key !== undefined) headers.authorization = `Bearer ${key}`;
    if (options.accept !== undefined) headers.accept = options.accept;
    let body: BodyInit | undefined;
    if (options.body instanceof Blob) {
      body = options.body;
      headers['content-type'] = 'application/octet-stream';
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    let response: Response;
    try {
      response = await fetch(path, {
        method: options.method ?? 'GET',
        headers,
        body,
        signal: options.signal,
        credentials: 'omit',
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new ApiError(
        0,
        'network',
        `The server did not answer (${String(error)}). Check that it still runs, then retry.`,
      );
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  async json<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.fetch(path, options);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  /** Reads an NDJSON answer line by line until it ends or `signal` aborts. */
  async ndjson(
    path: string,
    options: RequestOptions,
    onEvent: (event: Record<string, unknown>) => void,
  ): Promise<void> {
    const response = await this.fetch(path, { ...options, accept: 'application/x-ndjson' });
    const reader = response.body?.getReader();
    if (reader === undefined) return;
    const decoder = new TextDecoder();
    let buffered = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line !== '') onEvent(JSON.parse(line) as Record<string, unknown>);
      }
    }
  }

  /**
   * The subprotocols a WebSocket offers: the console's, and the key (base64url) when there is
   * one, since a browser cannot set `Authorization` on a WebSocket and a URL is logged.
   */
  webSocketProtocols(): string[] {
    const key = this.apiKey;
    if (key === undefined) return ['sandpool.v1'];
    const bytes = new TextEncoder().encode(key);
    let binary = '';
    for (const byte of bytes) binary += String.fromCharCode(byte);
    const encoded = btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    return ['sandpool.v1', `sandpool.bearer.${encoded}`];
  }
}

async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.message !== undefined) {
      return new ApiError(response.status, body.error.code ?? 'error', body.error.message);
    }
  } catch {
    // Not the API's error shape (a proxy's page): say what we got.
  }
  return new ApiError(
    response.status,
    'http_error',
    `The server answered ${response.status} ${response.statusText}${text ? `: ${text.slice(0, 200)}` : ''}.`,
  );
}

/** Path segment encoding for ids taken from the API. */
export const seg = encodeURIComponent;

import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';

/** The worker could not be reached, or broke the connection before answering. */
export class WorkerUnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`${url}: ${reason}`, options);
    this.name = 'WorkerUnreachableError';
  }
}

export interface ProxyRequest {
  /** Absolute URL on the worker. */
  url: string;
  method: string;
  headers: OutgoingHttpHeaders;
  /** A buffer, a stream piped through as it arrives (uploads), or nothing. */
  body?: Buffer | Readable;
  /** Aborts the request to the worker (the client went away). */
  signal?: AbortSignal;
  /** The response head must arrive in this time; unset for commands that run long. */
  responseTimeoutMs?: number;
}

export interface WorkerProxyOptions {
  /** A worker that accepts no connection in this time is unreachable. */
  connectTimeoutMs: number;
}

/**
 * HTTP to workers over kept-alive connections (the coordinator's added latency is mostly a
 * connection set-up otherwise). Bodies flow through as streams in both directions.
 */
export class WorkerProxy {
  private readonly http = new HttpAgent({ keepAlive: true, maxSockets: 512 });
  private readonly https = new HttpsAgent({ keepAlive: true, maxSockets: 512 });

  constructor(private readonly options: WorkerProxyOptions) {}

  /** Resolves with the response head and its body as a stream; rejects when no answer comes. */
  send(request: ProxyRequest): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      const target = new URL(request.url);
      const secure = target.protocol === 'https:';
      const upstream = (secure ? httpsRequest : httpRequest)(target, {
        method: request.method,
        headers: request.headers,
        agent: secure ? this.https : this.http,
        signal: request.signal,
      });
      let connectTimer: NodeJS.Timeout | undefined;
      let responseTimer: NodeJS.Timeout | undefined;
      let settled = false;
      const fail = (reason: string, cause?: unknown) => {
        clearTimeout(connectTimer);
        clearTimeout(responseTimer);
        if (settled) return;
        settled = true;
        upstream.destroy();
        reject(new WorkerUnreachableError(request.url, reason, { cause }));
      };
      upstream.on('socket', (socket) => {
        socket.setNoDelay(true); // Small requests go out at once, not after a delayed ACK.
        if (!socket.connecting) return; // A kept-alive connection.
        connectTimer = setTimeout(
          () => fail(`no connection within ${this.options.connectTimeoutMs} ms`),
          this.options.connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      if (request.responseTimeoutMs !== undefined) {
        responseTimer = setTimeout(
          () => fail(`no answer within ${request.responseTimeoutMs} ms`),
          request.responseTimeoutMs,
        );
      }
      upstream.on('response', (response) => {
        clearTimeout(connectTimer);
        clearTimeout(responseTimer);
        if (settled) {
          response.destroy();
          return;
        }
        settled = true;
        resolve(response);
      });
      upstream.on('error', (error: NodeJS.ErrnoException) =>
        fail(error.code ?? error.message, error),
      );

      const { body } = request;
      if (body === undefined) upstream.end();
      else if (Buffer.isBuffer(body)) upstream.end(body);
      else {
        body.once('error', (error) => upstream.destroy(error));
        body.pipe(upstream);
      }
    });
  }

  /** Drops the kept-alive connections; safe to call twice. */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

/** Reads a (small) response body whole, failing past `limitBytes`. */
export async function readResponse(response: Readable, limitBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limitBytes) {
      response.destroy();
      throw new Error(`answer larger than ${limitBytes} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

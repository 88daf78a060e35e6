import { SandboxError } from './errors.js';
import { responseBody, type HttpTransport } from './http-transport.js';

/** A failure while reading an answer's body: typed errors pass, the rest is the network's. */
export function streamError(
  transport: HttpTransport,
  error: unknown,
  url: string,
  signal: AbortSignal | undefined,
): Error {
  if (error instanceof SyntaxError) {
    return new SandboxError('invalid_response', `${url}: ${error.message}`, { cause: error });
  }
  return transport.networkError(error, url, signal, null);
}

/** The answer's body, with a broken connection surfacing as a `ConnectionError`. */
export function guardStream(
  transport: HttpTransport,
  response: Response,
  url: string,
  signal: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  const body = responseBody(response);
  if (body === null) return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      pull: async (controller) => {
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          controller.error(streamError(transport, error, url, signal));
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}

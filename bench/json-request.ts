import { request, type IncomingMessage, type RequestOptions } from 'node:http';

/**
 * One HTTP call with a JSON body, read whole: plain node:http so that the benchmark measures the
 * servers, not a client library. `target` is a URL or socket options.
 */
export function jsonRequest(
  target: string | RequestOptions,
  method: string,
  body?: unknown,
  options: RequestOptions = {},
): Promise<{ status: number; contentType: string; raw: Buffer }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = payload
      ? { 'content-type': 'application/json', 'content-length': payload.length }
      : {};
    const settings: RequestOptions = { ...options, method, headers };
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: res.headers['content-type'] ?? '',
          raw: Buffer.concat(chunks),
        }),
      );
      res.on('error', reject);
    };
    const req =
      typeof target === 'string'
        ? request(target, settings, onResponse)
        : request({ ...target, ...settings }, onResponse);
    req.on('error', reject);
    req.end(payload);
  });
}

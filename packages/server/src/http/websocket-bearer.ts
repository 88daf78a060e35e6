import type { FastifyRequest } from 'fastify';

/**
 * A browser cannot set `Authorization` on a WebSocket, and a key in the URL would end up in
 * histories and access logs. The console offers two subprotocols instead: {@link CONSOLE_PROTOCOL},
 * which the server selects, and `sandpool.bearer.<base64url(key)>`, which carries the key in
 * `Sec-WebSocket-Protocol` (a header no log line of sandpool records) and is never echoed back.
 */
export const CONSOLE_PROTOCOL = 'sandpool.v1';
const BEARER_PREFIX = 'sandpool.bearer.';

/**
 * Where a request's credentials would sit in a log line that carried its headers (none of
 * sandpool's does; this keeps a future one from leaking the key): pino's `redact` paths.
 */
export const CREDENTIAL_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers["sec-websocket-protocol"]',
  'headers.authorization',
  'headers["sec-websocket-protocol"]',
];

/** `Bearer <key>` from a `Sec-WebSocket-Protocol` header, or undefined when it carries none. */
export function bearerFromProtocols(header: string | undefined): string | undefined {
  for (const entry of (header ?? '').split(',')) {
    const protocol = entry.trim();
    if (!protocol.startsWith(BEARER_PREFIX)) continue;
    const encoded = protocol.slice(BEARER_PREFIX.length);
    if (!/^[A-Za-z0-9_-]+$/.test(encoded)) return undefined;
    return `Bearer ${Buffer.from(encoded, 'base64url').toString('utf8')}`;
  }
  return undefined;
}

/** The request's credentials: its `Authorization`, or, on a WebSocket upgrade, the key it offered. */
export function authorizationOf(request: FastifyRequest): string | undefined {
  if (request.headers.authorization !== undefined) return request.headers.authorization;
  if (request.headers.upgrade?.toLowerCase() !== 'websocket') return undefined;
  const offered = request.headers['sec-websocket-protocol'];
  return bearerFromProtocols(Array.isArray(offered) ? offered.join(',') : offered);
}

/** The `ws` server's choice among the offered subprotocols: ours, never the one with the key. */
export function selectProtocol(protocols: Set<string>): string | false {
  return protocols.has(CONSOLE_PROTOCOL) ? CONSOLE_PROTOCOL : false;
}

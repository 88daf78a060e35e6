import { STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { SandpoolError } from '../../errors/sandpool-error.js';
import { parseHostHeader } from '../host-origin-guard.js';
import { endToEndHeaders, relayHttp, relayUpgrade } from '../../ports/http-relay.js';
import {
  ACCESS_TOKEN_HEADERS,
  MAX_SIGNED_URL_SECONDS,
  PREVIEW_COOKIE,
  PREVIEW_QUERY,
  readCookie,
  withoutCookie,
} from '../../ports/preview-access.js';
import { parsePreviewHost, previewHost, type PreviewTarget } from '../../ports/preview-host.js';
import type { PortService } from '../../ports/port-service.js';
import { errorResponses } from '../schemas.js';

/** Set by a coordinator that relays a preview host's request: the Host the client used. */
export const FORWARDED_PREVIEW_HOST = 'x-sandpool-preview-host';
/** The client's own `Authorization` of such a request (the coordinator's key took its place). */
export const FORWARDED_PREVIEW_AUTHORIZATION = 'x-sandpool-preview-authorization';
/** Its `Origin` (a preview page's own origin is foreign to the worker's API, not to its server). */
export const FORWARDED_PREVIEW_ORIGIN = 'x-sandpool-preview-origin';

export const PortParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128 }),
  port: Type.String({ pattern: '^[0-9]{1,5}$', description: 'A TCP port, 1-65535' }),
});
export type PortParams = Static<typeof PortParams>;

const PortVisibility = Type.Object(
  { public: Type.Boolean({ description: 'true: anyone with the URL may use the port' }) },
  { additionalProperties: false },
);
const PortVisibilityView = Type.Object({ port: Type.Integer(), public: Type.Boolean() });
const SignedUrlBody = Type.Object(
  {
    ttl_seconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_SIGNED_URL_SECONDS, description: 'Default 3600' }),
    ),
  },
  { additionalProperties: false },
);
const SignedUrlView = Type.Object({ url: Type.String(), expires_at: Type.String() });

/** A port number from a route parameter; 400 outside 1-65535. */
export function portOf(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SandpoolError('invalid_request', `Port ${text} is not a TCP port; use 1-65535.`);
  }
  return port;
}

/** The socket's first bytes after an upgrade's head (kept by @fastify/websocket on the request). */
export function upgradeHead(raw: IncomingMessage): Buffer {
  const key = Object.getOwnPropertySymbols(raw).find((s) => s.description === 'ws-head');
  const head = key === undefined ? undefined : (raw as unknown as Record<symbol, unknown>)[key];
  return Buffer.isBuffer(head) ? head : Buffer.alloc(0);
}

/** The request's path and query past `/v1/sessions/{id}/ports/{port}` ("/" at least). */
export function pathPastPort(url: string): string {
  const rest = url.replace(/^\/v1\/sessions\/[^/?]+\/ports\/[0-9]+/, '');
  return rest === '' ? '/' : rest.startsWith('/') ? rest : `/${rest}`;
}

/** Whether Node parsed the request as an upgrade (it then came with the server's socket). */
export function isUpgrade(raw: IncomingMessage): boolean {
  return (raw as IncomingMessage & { upgrade?: boolean }).upgrade === true;
}

/** The path without the signed URL's parameter, and that parameter. */
function splitSignature(path: string): { path: string; token: string | undefined } {
  const q = path.indexOf('?');
  if (q < 0) return { path, token: undefined };
  const params = new URLSearchParams(path.slice(q + 1));
  const token = params.get(PREVIEW_QUERY) ?? undefined;
  if (token === undefined) return { path, token };
  params.delete(PREVIEW_QUERY);
  const query = params.toString();
  return { path: path.slice(0, q) + (query === '' ? '' : `?${query}`), token };
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** An error answer written on the socket of an upgrade (after a hijack). */
function writeUpgradeError(request: FastifyRequest, error: SandpoolError): void {
  const body = JSON.stringify(error.toBody());
  request.raw.socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

interface PreviewCall {
  target: PreviewTarget;
  /** Path and query for the server in the sandbox. */
  path: string;
  /** The Host header the server in the sandbox sees. */
  host: string;
  /** Whether the session's credentials are checked (the host form), or the API key sufficed. */
  checkAccess: boolean;
  /** The client's own Authorization header to pass on (a coordinator moved it aside). */
  authorization?: string | undefined;
  /** Likewise its Origin. */
  origin?: string | undefined;
}

/**
 * Carries one request (or WebSocket upgrade) to a port inside a session's sandbox: checks access,
 * turns a signed URL into a cookie, opens the tunnel (errors answer in the API's shape), then
 * hands the raw request to the relay.
 */
export async function servePreview(
  ports: PortService,
  request: FastifyRequest,
  reply: FastifyReply,
  call: PreviewCall,
): Promise<void> {
  const { sessionId, port } = call.target;
  const signed = splitSignature(call.path);
  if (call.checkAccess) {
    const access = ports.authorize(sessionId, port, {
      header: ACCESS_TOKEN_HEADERS.map((h) => headerText(request.headers[h])).find(
        (v) => v !== undefined,
      ),
      query: signed.token,
      cookie: readCookie(request.headers.cookie, PREVIEW_COOKIE),
    });
    if (access === 'signed-url' && (request.method === 'GET' || request.method === 'HEAD')) {
      // A browser keeps the access as a cookie of this host only and loses the token from its
      // address bar (and from the Referer of what the page loads).
      const ttl = Math.max(1, Number((signed.token ?? '').split('.')[0]) - Date.now() / 1000);
      reply
        .code(302)
        .header(
          'set-cookie',
          `${PREVIEW_COOKIE}=${signed.token}; Path=/; Max-Age=${Math.floor(ttl)}; HttpOnly; SameSite=Lax`,
        )
        .header('location', signed.path)
        .header('cache-control', 'no-store')
        .send();
      return;
    }
  }
  const connection = await ports.connect(sessionId, port);

  const headers: OutgoingHttpHeaders = endToEndHeaders(request.headers);
  for (const name of [
    ...ACCESS_TOKEN_HEADERS,
    FORWARDED_PREVIEW_HOST,
    FORWARDED_PREVIEW_AUTHORIZATION,
    FORWARDED_PREVIEW_ORIGIN,
  ]) {
    delete headers[name];
  }
  if (call.origin !== undefined) headers.origin = call.origin;
  delete headers.authorization;
  if (call.authorization !== undefined) headers.authorization = call.authorization;
  const cookie = withoutCookie(headerText(request.headers.cookie), PREVIEW_COOKIE);
  if (cookie === undefined) delete headers.cookie;
  else headers.cookie = cookie;
  headers.host = call.host;
  headers['x-forwarded-host'] = call.host;
  headers['x-forwarded-proto'] = 'http';
  if (request.ip) headers['x-forwarded-for'] = request.ip;

  const relay = { upstream: { connection }, method: request.method, path: signed.path, headers };
  reply.hijack();
  const onFailure = (error: Error) => {
    connection.destroy();
    const failure = new SandpoolError(
      'port_not_listening',
      `The server on port ${port} in the session broke the connection (${error.message}); check that it speaks HTTP.`,
    );
    if (isUpgrade(request.raw)) {
      writeUpgradeError(request, failure);
    } else if (!reply.raw.headersSent) {
      reply.raw.writeHead(failure.status, { 'content-type': 'application/json' });
      reply.raw.end(JSON.stringify(failure.toBody()));
    } else reply.raw.destroy();
  };
  if (isUpgrade(request.raw)) {
    relayUpgrade(request.raw, request.raw.socket, upgradeHead(request.raw), relay, onFailure);
  } else {
    relayHttp(request.raw, reply.raw, relay, onFailure);
  }
}

/**
 * Preview hosts, `{port}-{session id}.{previewDomain}`: decided before any other hook or route,
 * so a preview host never reaches the sandpool API (its pages cannot call it as same-origin),
 * and before the Host/Origin guard, since the server in the sandbox answers its own pages.
 * Register it first.
 */
export function installPreviewHosts(
  app: FastifyInstance,
  ports: PortService,
  previewDomain: string,
): void {
  app.addHook('onRequest', async (request, reply) => {
    const target = parsePreviewHost(request.headers.host, previewDomain);
    if (target === undefined) return;
    await servePreview(ports, request, reply, {
      target,
      path: request.url,
      host: request.headers.host as string,
      checkAccess: true,
    });
    return reply;
  });
}

/** The signed URL's origin: the preview host under the port the client reached this server on. */
export function signedUrlBase(
  request: FastifyRequest,
  target: PreviewTarget,
  previewDomain: string,
): string {
  const serverPort = parseHostHeader(request.headers.host)?.port ?? '';
  return `http://${previewHost(target, previewDomain, serverPort)}`;
}

/** `/v1/sessions/{id}/ports/{port}/…` and the port's settings: thin over the PortService. */
export const portRoutes: FastifyPluginAsyncTypebox<{
  ports: PortService;
  previewDomain: string;
}> = async (app, { ports, previewDomain }) => {
  app.put(
    '/v1/sessions/:id/ports/:port',
    {
      schema: {
        tags: ['ports'],
        summary: 'Make a port of the session public (no token needed) or private (the default)',
        params: PortParams,
        body: PortVisibility,
        response: { 200: PortVisibilityView, ...errorResponses(400, 401, 404, 410) },
      },
    },
    async (request) =>
      ports.setPublic(request.params.id, portOf(request.params.port), request.body.public),
  );

  app.post(
    '/v1/sessions/:id/ports/:port/url',
    {
      schema: {
        tags: ['ports'],
        summary: 'A signed preview URL of the port for browsers (sets a cookie, then redirects)',
        params: PortParams,
        body: Type.Optional(SignedUrlBody),
        response: { 200: SignedUrlView, ...errorResponses(400, 401, 404, 410) },
      },
    },
    async (request) => {
      const port = portOf(request.params.port);
      const signed = ports.sign(request.params.id, port, request.body?.ttl_seconds ?? 3600);
      const base = signedUrlBase(request, { sessionId: request.params.id, port }, previewDomain);
      return {
        url: `${base}/?${PREVIEW_QUERY}=${encodeURIComponent(signed.token)}`,
        expires_at: signed.expiresAt,
      };
    },
  );

  // Any method, any path past the port: the request goes to the server in the sandbox as it
  // is. Relayed from onRequest, before Fastify reads the body, which streams through unread.
  const relayRoute = async (request: FastifyRequest, reply: FastifyReply) => {
    const { id, port } = request.params as PortParams;
    const forwardedHost = headerText(request.headers[FORWARDED_PREVIEW_HOST]);
    const number = portOf(port);
    await servePreview(ports, request, reply, {
      target: { sessionId: id, port: number },
      path: pathPastPort(request.url),
      // A coordinator relays a preview host's request here: that host's rules (credentials).
      host: forwardedHost ?? `localhost:${number}`,
      checkAccess: forwardedHost !== undefined,
      authorization: headerText(request.headers[FORWARDED_PREVIEW_AUTHORIZATION]),
      origin: headerText(request.headers[FORWARDED_PREVIEW_ORIGIN]),
    });
    return reply;
  };
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
    url: '/v1/sessions/:id/ports/:port/*',
    schema: { hide: true },
    onRequest: relayRoute,
    handler: async () => {
      throw new SandpoolError('internal_error', 'The port relay did not take the request.');
    },
  });
};

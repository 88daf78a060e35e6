import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SessionRouter } from '../../coordinator/session-router.js';
import { readResponse } from '../../coordinator/worker-proxy.js';
import { SandpoolError } from '../../errors/sandpool-error.js';
import { endToEndHeaders, relayHttp, relayUpgrade } from '../../ports/http-relay.js';
import { parsePreviewHost } from '../../ports/preview-host.js';
import type { CoordinatorRouteOptions } from './coordinator-routes.js';
import {
  FORWARDED_PREVIEW_AUTHORIZATION,
  FORWARDED_PREVIEW_HOST,
  FORWARDED_PREVIEW_ORIGIN,
  isUpgrade,
  PortParams,
  portOf,
  signedUrlBase,
  upgradeHead,
} from './port-routes.js';

interface CoordinatorRelay {
  router: SessionRouter;
  /** What the coordinator sends workers as `Authorization` (undefined: the client's). */
  workerKey: string | undefined;
}

/**
 * Relays a request (or upgrade) as it is to the worker that owns the session, at `path`: the
 * worker checks and serves it. A worker that does not answer is a 503, as for any session route.
 */
async function relayToOwner(
  { router, workerKey }: CoordinatorRelay,
  request: FastifyRequest,
  reply: FastifyReply,
  sessionId: string,
  path: string,
  previewHostHeader: string | undefined,
): Promise<void> {
  const target = await router.route(sessionId);
  const url = new URL(target.url);
  const headers: OutgoingHttpHeaders = endToEndHeaders(request.headers);
  if (previewHostHeader !== undefined) {
    // The worker serves this as the preview host's request: the client's Authorization and
    // Origin belong to the server in the sandbox, not to the worker's API.
    headers[FORWARDED_PREVIEW_HOST] = previewHostHeader;
    if (request.headers.authorization !== undefined) {
      headers[FORWARDED_PREVIEW_AUTHORIZATION] = request.headers.authorization;
    }
    if (request.headers.origin !== undefined) {
      headers[FORWARDED_PREVIEW_ORIGIN] = request.headers.origin;
    }
    delete headers.origin;
    delete headers.authorization;
  }
  if (workerKey !== undefined) headers.authorization = `Bearer ${workerKey}`;
  headers.host = url.host;
  const relay = { upstream: { url }, method: request.method, path, headers };
  reply.hijack();
  const onFailure = (error: Error) => {
    const failure = new SandpoolError(
      'runtime_unavailable',
      `Worker ${target.workerId} at ${target.url} owns session ${sessionId} but did not answer (${error.message}); retry in a moment.`,
      1,
    );
    const body = JSON.stringify(failure.toBody());
    if (isUpgrade(request.raw)) {
      request.raw.socket.end(
        `HTTP/1.1 503 ${STATUS_CODES[503]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n${body}`,
      );
    } else if (!reply.raw.headersSent) {
      reply.raw.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      reply.raw.end(body);
    } else reply.raw.destroy();
  };
  if (isUpgrade(request.raw)) {
    relayUpgrade(request.raw, request.raw.socket, upgradeHead(request.raw), relay, onFailure);
  } else {
    relayHttp(request.raw, reply.raw, relay, onFailure);
  }
}

/**
 * Preview hosts on a coordinator: the host names its session, whose worker gets the request (as
 * `/v1/sessions/{id}/ports/{port}/…` with the coordinator's key, marked as the preview host's,
 * so the worker checks the session's credentials). Registered before the Host/Origin guard.
 */
export function installCoordinatorPreviewHosts(
  app: FastifyInstance,
  relay: CoordinatorRelay,
  previewDomain: string,
): void {
  app.addHook('onRequest', async (request, reply) => {
    const target = parsePreviewHost(request.headers.host, previewDomain);
    if (target === undefined) return;
    const path = `/v1/sessions/${encodeURIComponent(target.sessionId)}/ports/${target.port}${request.url}`;
    await relayToOwner(relay, request, reply, target.sessionId, path, request.headers.host);
    return reply;
  });
}

/** The port routes through a coordinator: relayed whole; a signed URL names this coordinator. */
export const coordinatorPortRoutes: FastifyPluginAsyncTypebox<
  CoordinatorRouteOptions & { previewDomain: string }
> = async (app, { router, proxy, workerApiKey, previewDomain }) => {
  const relay: CoordinatorRelay = { router, workerKey: workerApiKey };

  app.post(
    '/v1/sessions/:id/ports/:port/url',
    { schema: { hide: true, params: PortParams } },
    async (request, reply) => {
      const { id, port } = request.params;
      const number = portOf(port);
      const target = await router.route(id);
      const authorization =
        workerApiKey !== undefined ? `Bearer ${workerApiKey}` : request.headers.authorization;
      const body = request.body === undefined ? Buffer.from('{}') : await readBody(request.body);
      const response = await proxy.send({
        url: `${target.url}${request.url}`,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          ...(authorization === undefined ? {} : { authorization }),
        },
        body,
        responseTimeoutMs: 10_000,
      });
      const answer = await readResponse(response, 64 * 1024);
      if (response.statusCode !== 200) {
        return reply
          .code(response.statusCode ?? 502)
          .header('content-type', 'application/json')
          .send(answer);
      }
      // The worker's URL names the worker; the client reaches this coordinator instead.
      const signed = JSON.parse(answer.toString()) as { url: string; expires_at: string };
      const workerUrl = new URL(signed.url);
      const base = signedUrlBase(request, { sessionId: id, port: number }, previewDomain);
      return {
        url: `${base}${workerUrl.pathname}${workerUrl.search}`,
        expires_at: signed.expires_at,
      };
    },
  );

  // Everything else under a session's ports (the path form, PUT public): relayed as it is, from
  // onRequest, so bodies and upgrades stream through unread.
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
    url: '/v1/sessions/:id/ports/*',
    schema: { hide: true },
    onRequest: async (request, reply) => {
      const { id } = request.params as { id: string };
      await relayToOwner(relay, request, reply, id, request.url, undefined);
      return reply;
    },
    handler: async () => {
      throw new SandpoolError('internal_error', 'The port relay did not take the request.');
    },
  });
};

async function readBody(body: unknown): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new SandpoolError('payload_too_large', 'The body is too large.');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { SessionRouter } from '../coordinator/session-router.js';
import { WorkerUnreachableError, type WorkerProxy } from '../coordinator/worker-proxy.js';
import { SandpoolError } from '../errors/sandpool-error.js';
import { abortOnDisconnect } from '../http/client-disconnect.js';
import { installE2bErrors } from './e2b-errors.js';

export interface CoordinatorSandboxProxyOptions {
  router: SessionRouter;
  proxy: WorkerProxy;
}

/** Headers that belong to one connection, not to the message (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'host',
  'proxy-connection',
  'te',
  'trailer',
]);

/**
 * The sandbox scope on a coordinator: every request under `E2B_SANDBOX_URL` goes to the worker
 * that owns the sandbox named by `E2b-Sandbox-Id`, bodies streamed both ways (uploads, Connect
 * server streams, cell output). The worker checks the access token: the coordinator holds none.
 */
export const coordinatorSandboxProxy: FastifyPluginAsync<CoordinatorSandboxProxyOptions> = async (
  scope,
  { router, proxy },
) => {
  installE2bErrors(scope, 'sandbox');
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  scope.all('/*', async (request, reply) => {
    const id = request.headers['e2b-sandbox-id'];
    if (typeof id !== 'string' || id === '')
      throw new SandpoolError(
        'invalid_request',
        'Missing E2b-Sandbox-Id header: the E2B SDK sends it when E2B_SANDBOX_URL points here.',
      );
    const target = await router.route(id);
    const signal = abortOnDisconnect(reply);
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
    let response: IncomingMessage;
    try {
      response = await proxy.send({
        url: upstreamUrl(target.url, request.url),
        method: request.method,
        headers: forwarded(request),
        body: hasBody ? bodyOf(request) : undefined,
        signal,
      });
    } catch (error) {
      if (signal.aborted) throw new SandpoolError('invalid_request', 'The client went away.');
      if (error instanceof WorkerUnreachableError)
        throw await router.unreachable(id, target, error);
      throw error;
    }
    if (!request.raw.complete) reply.header('connection', 'close');
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'date') headers[name] = value;
    }
    return reply
      .code(response.statusCode ?? 502)
      .headers(headers)
      .send(response);
  });
};

function forwarded(request: FastifyRequest): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
  }
  return headers;
}

function bodyOf(request: FastifyRequest): Readable {
  const body = request.body as Readable | undefined;
  return body !== undefined && typeof body.pipe === 'function' ? body : request.raw;
}

/** The same path on the worker; a path with dot segments would reach another route: refused. */
function upstreamUrl(base: string, requestUrl: string): string {
  const target = new URL(`${base}${requestUrl}`);
  const asked = requestUrl.split('?')[0] ?? '';
  if (target.pathname !== asked || target.origin !== new URL(base).origin)
    throw new SandpoolError('invalid_request', `The path ${asked} is not in normal form.`);
  return target.href;
}

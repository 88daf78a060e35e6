import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CoordinatorMetrics } from '../../coordinator/coordinator-metrics.js';
import type { SessionRouter, WorkerTarget } from '../../coordinator/session-router.js';
import {
  readResponse,
  WorkerUnreachableError,
  type WorkerProxy,
} from '../../coordinator/worker-proxy.js';
import { SandpoolError } from '../../errors/sandpool-error.js';
import { Type } from '@sinclair/typebox';
import { SessionParams } from '../schemas.js';
import { abortOnDisconnect } from '../client-disconnect.js';
import { PROCESS_PROXY_ROUTES } from './coordinator-process-routes.js';

export interface CoordinatorRouteOptions {
  router: SessionRouter;
  proxy: WorkerProxy;
  metrics: CoordinatorMetrics;
  /** Sent to workers instead of the client's `Authorization` when set. */
  workerApiKey: string | undefined;
  /** Largest body the coordinator reads itself (create, /execute). */
  bodyLimitBytes: number;
}

const NDJSON = 'application/x-ndjson';
const CONTROL_ANSWER_LIMIT = 4 * 1024 * 1024;
/** Bodies and answers up to these sizes are read whole: one write beats a pipe for them. */
const SMALL_BODY_BYTES = 64 * 1024;
const SMALL_ANSWER_BYTES = 256 * 1024;
/** Headers that belong to one connection, not to the message (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'upgrade']);

interface RelayOptions {
  /** A body read already (the seed's /execute); otherwise the request streams through. */
  body?: Buffer;
  /** Sees a control answer whole before the client does (keep-alive, delete). */
  after?: (status: number, body: Buffer, target: WorkerTarget) => Promise<void>;
}

/**
 * The public API of a worker, answered by forwarding to the worker that owns the session.
 * Uploads, downloads and NDJSON exec output stream through; only small JSON bodies and answers
 * (session views, exec requests and results) are read whole.
 */
export const coordinatorRoutes: FastifyPluginAsyncTypebox<CoordinatorRouteOptions> = async (
  app,
  { router, proxy, metrics, workerApiKey, bodyLimitBytes },
) => {
  const upstreamHeaders = (request: FastifyRequest, body?: Buffer): OutgoingHttpHeaders => {
    const headers: OutgoingHttpHeaders = {};
    for (const name of ['content-type', 'accept'] as const) {
      const value = request.headers[name];
      if (value !== undefined) headers[name] = value;
    }
    if (body !== undefined) headers['content-length'] = body.length;
    else if (request.headers['content-length'] !== undefined) {
      headers['content-length'] = request.headers['content-length'];
    }
    const authorization =
      workerApiKey !== undefined ? `Bearer ${workerApiKey}` : request.headers.authorization;
    if (authorization !== undefined) headers.authorization = authorization;
    return headers;
  };

  const relay = async (
    request: FastifyRequest,
    reply: FastifyReply,
    sessionId: string,
    options: RelayOptions = {},
  ) => {
    const target = await router.route(sessionId);
    const signal = abortOnDisconnect(reply);
    const hasBody = request.method === 'POST' || request.method === 'PUT';
    // A small JSON body (an exec) goes out in one write; an upload streams through as it comes.
    const body =
      options.body ??
      (hasBody && request.method === 'POST' && declaredLength(request.headers) <= SMALL_BODY_BYTES
        ? await readBody(request)
        : undefined);
    const stopTimer = metrics.upstreamSeconds.startTimer();
    let response: IncomingMessage;
    try {
      response = await proxy.send({
        url: upstreamUrl(target.url, request.url),
        method: request.method,
        headers: upstreamHeaders(request, body),
        body: body ?? (hasBody ? requestStream(request) : undefined),
        signal,
      });
    } catch (error) {
      if (signal.aborted) throw new SandpoolError('invalid_request', 'The client went away.');
      if (error instanceof WorkerUnreachableError) {
        throw await router.unreachable(sessionId, target, error);
      }
      throw error;
    }
    stopTimer();
    metrics.routed.inc({ worker: target.workerId });
    const status = response.statusCode ?? 502;
    // The worker answered before reading the whole upload (413): the rest must not be read as
    // the next request.
    if (!request.raw.complete) reply.header('connection', 'close');
    const readWhole = async (limitBytes: number): Promise<Buffer> => {
      try {
        return await readResponse(response, limitBytes);
      } catch (error) {
        throw await router.unreachable(
          sessionId,
          target,
          new WorkerUnreachableError(target.url, 'the answer broke off', { cause: error }),
        );
      }
    };
    if (options.after) {
      const answer = await readWhole(CONTROL_ANSWER_LIMIT);
      await options.after(status, answer, target);
      return reply.code(status).headers(responseHeaders(response.headers)).send(answer);
    }
    const type = response.headers['content-type'] ?? '';
    if (type.includes(NDJSON)) {
      return reply
        .code(status)
        .headers(responseHeaders(response.headers))
        .send(relayNdjson(response, target.workerId));
    }
    // A small JSON answer (an exec result) is sent in one piece; bytes of files stream.
    if (
      type.includes('application/json') &&
      declaredLength(response.headers) <= SMALL_ANSWER_BYTES
    ) {
      const answer = await readWhole(SMALL_ANSWER_BYTES);
      return reply.code(status).headers(responseHeaders(response.headers)).send(answer);
    }
    return reply.code(status).headers(responseHeaders(response.headers)).send(response);
  };

  const readBody = async (request: FastifyRequest): Promise<Buffer> => {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > bodyLimitBytes) throw tooLarge(bodyLimitBytes);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of requestStream(request)) {
      const buffer = chunk as Buffer;
      size += buffer.length;
      if (size > bodyLimitBytes) throw tooLarge(bodyLimitBytes);
      chunks.push(buffer);
    }
    return Buffer.concat(chunks);
  };

  const create = async (request: FastifyRequest, reply: FastifyReply, path: string) => {
    const body = await readBody(request);
    const headers = upstreamHeaders(request, body);
    // An empty body is "no options" whatever its type (`hey` says text/html); a body without a
    // type is taken for JSON, as on a worker.
    if (body.length === 0) delete headers['content-type'];
    else if (headers['content-type'] === undefined) headers['content-type'] = 'application/json';
    const answer = await router.create(path, body, headers);
    return reply.code(answer.status).headers(responseHeaders(answer.headers)).send(answer.body);
  };

  app.post('/v1/sessions', async (request, reply) => create(request, reply, '/v1/sessions'));
  app.post('/create_session', async (request, reply) => create(request, reply, '/create_session'));

  app.get('/v1/templates', async () => ({ templates: await router.templates() }));

  app.get('/v1/sessions', async (request) => ({
    sessions: await router.listAll(upstreamHeaders(request)),
  }));

  const params = { schema: { params: SessionParams } };
  app.get('/v1/sessions/:id', params, async (request, reply) =>
    relay(request, reply, request.params.id, { after: async () => undefined }),
  );
  app.post('/v1/sessions/:id/keepalive', params, async (request, reply) =>
    relay(request, reply, request.params.id, {
      after: async (status, body, target) => {
        if (status === 200) await router.extended(request.params.id, target, body);
      },
    }),
  );
  app.delete('/v1/sessions/:id', params, async (request, reply) =>
    relay(request, reply, request.params.id, {
      after: async (status) => {
        if (status !== 204 && status !== 404) return;
        // The session is gone either way; a mapping left behind expires with its TTL.
        await router.released(request.params.id).catch((error: unknown) => {
          request.log.warn({ err: error }, 'could not remove the session mapping');
        });
      },
    }),
  );
  app.post('/v1/sessions/:id/exec', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  app.get('/v1/sessions/:id/execs', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  // The code interpreter: cells (NDJSON events stream through) and contexts.
  app.post('/v1/sessions/:id/code', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  app.post('/v1/sessions/:id/contexts', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  app.get('/v1/sessions/:id/contexts', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  const contextParams = {
    schema: { params: Type.Object({ ...SessionParams.properties, cid: Type.String() }) },
  };
  app.post('/v1/sessions/:id/contexts/:cid/restart', contextParams, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  app.delete('/v1/sessions/:id/contexts/:cid', contextParams, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  app.put('/v1/sessions/:id/files', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  app.get('/v1/sessions/:id/files', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  app.delete('/v1/sessions/:id/files', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  app.get('/v1/sessions/:id/files/list', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  // Egress (network-routes.ts): the policy lives with the session on its worker.
  app.get('/v1/sessions/:id/network', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  app.put('/v1/sessions/:id/network', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );
  app.get('/v1/sessions/:id/network/log', params, async (request, reply) =>
    relay(request, reply, request.params.id),
  );

  // Processes and watches (their NDJSON streams too) go to the session's worker like the rest.
  for (const { method, url } of PROCESS_PROXY_ROUTES) {
    app.route({
      method,
      url,
      ...params,
      handler: async (request, reply) => relay(request, reply, request.params.id),
    });
  }

  // The API document and its UI are the workers' own: any live worker serves them.
  const documentation = async (request: FastifyRequest, reply: FastifyReply) => {
    const target = await router.anyLiveWorker();
    let response: IncomingMessage;
    try {
      response = await proxy.send({
        url: upstreamUrl(target.url, request.url),
        method: 'GET',
        // Public routes: never lend them the client's or the coordinator's credentials.
        headers: { accept: request.headers.accept ?? '*/*' },
        responseTimeoutMs: 5000,
      });
    } catch (error) {
      if (error instanceof WorkerUnreachableError) {
        throw new SandpoolError(
          'runtime_unavailable',
          `Worker ${target.workerId} did not answer (${error.reason}); retry.`,
          1,
        );
      }
      throw error;
    }
    return reply
      .code(response.statusCode ?? 502)
      .headers(responseHeaders(response.headers))
      .send(response);
  };
  app.get('/openapi.json', documentation);
  app.get('/docs', documentation);
  app.get('/docs/*', documentation);

  // The seed's exec names the session in the body: read it (small), route, send it on.
  app.post('/execute', async (request, reply) => {
    const body = await readBody(request);
    let sessionId: unknown;
    try {
      sessionId = (JSON.parse(body.toString('utf8')) as { session_id?: unknown }).session_id;
    } catch {
      throw new SandpoolError('invalid_request', 'The body is not valid JSON.');
    }
    if (typeof sessionId !== 'string' || sessionId.length === 0 || sessionId.length > 128) {
      throw new SandpoolError(
        'invalid_request',
        'Invalid request: body is missing "session_id". See the API section of the README.',
      );
    }
    return relay(request, reply, sessionId, { body });
  });
};

/**
 * The same path on the worker. A path with dot segments (`/docs/../v1/...`) would resolve to
 * another route there than the one matched here, so it is refused.
 */
function upstreamUrl(base: string, requestUrl: string): string {
  const target = new URL(`${base}${requestUrl}`);
  const asked = requestUrl.split('?')[0] ?? '';
  if (target.pathname !== asked || target.origin !== new URL(base).origin) {
    throw new SandpoolError('invalid_request', `The path ${asked} is not in normal form.`);
  }
  return target.href;
}

/** The request body as the content-type parser left it: unread, streaming. */
function requestStream(request: FastifyRequest): Readable {
  const body = request.body as Readable | undefined;
  return body !== undefined && typeof body.pipe === 'function' ? body : request.raw;
}

/** The declared `content-length`, or Infinity when the body's size is not known up front. */
function declaredLength(headers: IncomingHttpHeaders): number {
  const value = headers['content-length'];
  return value === undefined ? Number.POSITIVE_INFINITY : Number(value);
}

function responseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  }
  return kept;
}

function tooLarge(limitBytes: number): SandpoolError {
  return new SandpoolError(
    'payload_too_large',
    `The request body exceeds the coordinator's limit of ${limitBytes} bytes (SANDPOOL_BODY_LIMIT_BYTES).`,
  );
}

/**
 * Passes an exec stream through line for line; if the worker breaks off, the client still gets
 * a last `error` event instead of a stream that just stops.
 */
function relayNdjson(response: IncomingMessage, workerId: string): Readable {
  const out = new PassThrough();
  response.on('error', () => undefined); // 'close' below reports it.
  response.pipe(out, { end: false });
  response.once('close', () => {
    if (out.destroyed) return;
    if (!response.complete) {
      const error = new SandpoolError(
        'runtime_unavailable',
        `Worker ${workerId} stopped answering while the command ran; its outcome is unknown.`,
      );
      out.write(`${JSON.stringify({ type: 'error', error: error.toBody().error })}\n`);
    }
    out.end();
  });
  return out;
}

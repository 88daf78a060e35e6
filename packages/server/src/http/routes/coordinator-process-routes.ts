import type { IncomingMessage } from 'node:http';
import websocket from '@fastify/websocket';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { WebSocket, type RawData } from 'ws';
import { readResponse, WorkerUnreachableError } from '../../coordinator/worker-proxy.js';
import { SandpoolError } from '../../errors/sandpool-error.js';
import { ProcessParams } from '../process-schemas.js';
import type { CoordinatorRouteOptions } from './coordinator-routes.js';
import { STDIN_LIMIT_BYTES } from './process-routes.js';
import { authorizationOf, selectProtocol } from '../websocket-bearer.js';

/**
 * The session routes of processes and watches that a coordinator relays to the owning worker like
 * any other (NDJSON streams included); the terminal's WebSocket is bridged by the plugin below.
 */
export const PROCESS_PROXY_ROUTES: readonly { method: 'GET' | 'POST' | 'DELETE'; url: string }[] = [
  { method: 'POST', url: '/v1/sessions/:id/processes' },
  { method: 'GET', url: '/v1/sessions/:id/processes' },
  { method: 'GET', url: '/v1/sessions/:id/processes/:pid' },
  { method: 'DELETE', url: '/v1/sessions/:id/processes/:pid' },
  { method: 'GET', url: '/v1/sessions/:id/processes/:pid/output' },
  { method: 'POST', url: '/v1/sessions/:id/processes/:pid/stdin' },
  { method: 'POST', url: '/v1/sessions/:id/processes/:pid/signal' },
  { method: 'POST', url: '/v1/sessions/:id/processes/:pid/resize' },
  { method: 'GET', url: '/v1/sessions/:id/files/watch' },
];

/** Client messages held while the connection to the worker opens. */
const MAX_EARLY_MESSAGES = 256;

/**
 * The terminal WebSocket through a coordinator: checked first with a plain request to the owning
 * worker (so an unknown session or process answers with its status, not a failed upgrade), then
 * bridged message for message, binary and text kept apart. Either side closing closes the other.
 */
export const coordinatorPtyProxy: FastifyPluginAsyncTypebox<CoordinatorRouteOptions> = async (
  app,
  { router, proxy, workerApiKey },
) => {
  await app.register(websocket, {
    options: { maxPayload: STDIN_LIMIT_BYTES, handleProtocols: selectProtocol },
  });

  const authorization = (request: FastifyRequest): string | undefined =>
    workerApiKey !== undefined ? `Bearer ${workerApiKey}` : authorizationOf(request);
  const targets = new WeakMap<FastifyRequest, string>();

  app.get(
    '/v1/sessions/:id/processes/:pid/pty',
    {
      websocket: true,
      schema: { params: ProcessParams },
      preHandler: async (request: FastifyRequest, reply: FastifyReply) => {
        const { id, pid } = request.params as ProcessParams;
        const target = await router.route(id);
        const path = `/v1/sessions/${encodeURIComponent(id)}/processes/${encodeURIComponent(pid)}`;
        let response: IncomingMessage;
        try {
          const auth = authorization(request);
          response = await proxy.send({
            url: `${target.url}${path}`,
            method: 'GET',
            headers: auth === undefined ? {} : { authorization: auth },
            responseTimeoutMs: 10_000,
          });
        } catch (error) {
          if (error instanceof WorkerUnreachableError) {
            throw await router.unreachable(id, target, error);
          }
          throw error;
        }
        const body = await readResponse(response, 64 * 1024);
        if (response.statusCode !== 200) {
          return reply
            .code(response.statusCode ?? 502)
            .header('content-type', 'application/json')
            .send(body);
        }
        targets.set(request, `${target.url.replace(/^http/, 'ws')}${path}/pty`);
        return undefined;
      },
    },
    (client, request) => {
      const url = targets.get(request);
      if (url === undefined) {
        client.close(1011, 'no worker');
        return;
      }
      const auth = authorization(request);
      const upstream = new WebSocket(url, {
        headers: auth === undefined ? {} : { authorization: auth },
        maxPayload: 16 * 1024 * 1024,
      });
      const early: { data: RawData; binary: boolean }[] = [];
      let closed = false;
      const closeBoth = (code: number, reason: string) => {
        if (closed) return;
        closed = true;
        const safe = code === 1000 || (code >= 3000 && code < 5000) ? code : 1011;
        if (client.readyState === WebSocket.OPEN) client.close(safe, reason.slice(0, 120));
        if (upstream.readyState === WebSocket.OPEN) upstream.close(safe, reason.slice(0, 120));
        else if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
      };
      client.on('message', (data, binary) => {
        if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary });
        else if (early.length < MAX_EARLY_MESSAGES) early.push({ data, binary });
        else closeBoth(1008, 'too many messages before the terminal opened');
      });
      upstream.on('open', () => {
        for (const message of early.splice(0))
          upstream.send(message.data, { binary: message.binary });
      });
      upstream.on('message', (data, binary) => {
        if (client.readyState === WebSocket.OPEN) client.send(data, { binary });
      });
      upstream.on('unexpected-response', (_req, response) => {
        const failure = new SandpoolError(
          'runtime_unavailable',
          `The worker refused the terminal (${response.statusCode ?? 'no status'}); retry.`,
        );
        if (client.readyState === WebSocket.OPEN) {
          client.send(JSON.stringify({ type: 'error', error: failure.toBody().error }));
        }
        closeBoth(1011, 'worker refused the terminal');
      });
      upstream.on('error', () => closeBoth(1011, 'the worker went away'));
      upstream.on('close', (code, reason) => closeBoth(code, reason.toString()));
      client.on('close', (code, reason) => closeBoth(code, reason.toString()));
      client.on('error', () => closeBoth(1011, 'client error'));
    },
  );
};

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { SessionManager } from '../../sessions/session-manager.js';
import { abortOnDisconnect } from '../client-disconnect.js';
import {
  CreateSessionBody,
  errorResponses,
  KeepAliveBody,
  SessionList,
  SessionParams,
  SessionView,
} from '../schemas.js';

export const sessionRoutes: FastifyPluginAsyncTypebox<{ sessions: SessionManager }> = async (
  app,
  { sessions },
) => {
  const create = async (reply: FastifyReply, body: CreateSessionBody | undefined) => {
    const gone = abortOnDisconnect(reply);
    const session = await sessions.create({
      template: body?.template,
      ttlSeconds: body?.ttl_seconds,
      env: body?.env,
      metadata: body?.metadata,
      network: body?.network,
    });
    if (gone.aborted) {
      // The client (often a coordinator that gave up on this worker) will never learn the id:
      // end the session now instead of holding its container until the TTL.
      await sessions.delete(session.id).catch(() => undefined);
      return reply.hijack();
    }
    return reply.code(201).send(sessions.view(session));
  };

  const createSchema = {
    body: Type.Optional(CreateSessionBody),
    response: { 201: SessionView, ...errorResponses(400, 401, 403, 404, 503) },
  };

  app.post(
    '/v1/sessions',
    {
      schema: {
        ...createSchema,
        tags: ['sessions'],
        summary: 'Open a session: a fresh sandbox from the warm pool',
      },
    },
    async (request, reply) => create(reply, request.body),
  );

  // The seed's name for the same thing.
  app.post(
    '/create_session',
    {
      schema: { ...createSchema, tags: ['seed'], summary: 'The seed’s name for POST /v1/sessions' },
    },
    async (request, reply) => create(reply, request.body),
  );

  app.get(
    '/v1/sessions',
    {
      schema: {
        tags: ['sessions'],
        summary: 'List open sessions',
        response: { 200: SessionList, ...errorResponses(401) },
      },
    },
    async () => ({ sessions: sessions.list().map((s) => sessions.view(s)) }),
  );

  app.get(
    '/v1/sessions/:id',
    {
      schema: {
        tags: ['sessions'],
        summary: 'Read a session',
        params: SessionParams,
        response: { 200: SessionView, ...errorResponses(401, 404, 410) },
      },
    },
    async (request) => sessions.view(sessions.get(request.params.id)),
  );

  app.post(
    '/v1/sessions/:id/keepalive',
    {
      schema: {
        tags: ['sessions'],
        summary: 'Extend a session’s life to ttl_seconds from now',
        params: SessionParams,
        body: Type.Optional(KeepAliveBody),
        response: { 200: SessionView, ...errorResponses(400, 401, 404, 410) },
      },
    },
    async (request) =>
      sessions.view(sessions.keepAlive(request.params.id, request.body?.ttl_seconds)),
  );

  app.delete(
    '/v1/sessions/:id',
    {
      schema: {
        tags: ['sessions'],
        summary: 'End a session; its container is destroyed before the answer',
        params: SessionParams,
        response: { 204: Type.Null({ description: 'Closed' }), ...errorResponses(401, 404) },
      },
    },
    async (request, reply) => {
      await sessions.delete(request.params.id);
      return reply.code(204).send(null);
    },
  );
};

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { SessionManager } from '../../sessions/session-manager.js';
import { CreateSessionBody, KeepAliveBody, SessionParams, SessionView } from '../schemas.js';

export const sessionRoutes: FastifyPluginAsyncTypebox<{ sessions: SessionManager }> = async (
  app,
  { sessions },
) => {
  const create = async (body: CreateSessionBody | undefined) => {
    const session = await sessions.create({
      ttlSeconds: body?.ttl_seconds,
      env: body?.env,
      metadata: body?.metadata,
    });
    return sessions.view(session);
  };

  app.post(
    '/v1/sessions',
    { schema: { body: Type.Optional(CreateSessionBody), response: { 201: SessionView } } },
    async (request, reply) => reply.code(201).send(await create(request.body)),
  );

  // The seed's name for the same thing.
  app.post(
    '/create_session',
    { schema: { body: Type.Optional(CreateSessionBody), response: { 201: SessionView } } },
    async (request, reply) => reply.code(201).send(await create(request.body)),
  );

  app.get('/v1/sessions', async () => ({ sessions: sessions.list().map((s) => sessions.view(s)) }));

  app.get(
    '/v1/sessions/:id',
    { schema: { params: SessionParams, response: { 200: SessionView } } },
    async (request) => sessions.view(sessions.get(request.params.id)),
  );

  app.post(
    '/v1/sessions/:id/keepalive',
    {
      schema: {
        params: SessionParams,
        body: Type.Optional(KeepAliveBody),
        response: { 200: SessionView },
      },
    },
    async (request) =>
      sessions.view(sessions.keepAlive(request.params.id, request.body?.ttl_seconds)),
  );

  app.delete('/v1/sessions/:id', { schema: { params: SessionParams } }, async (request, reply) => {
    await sessions.delete(request.params.id);
    return reply.code(204).send();
  });
};

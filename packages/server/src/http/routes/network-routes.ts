import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { EgressService } from '../../network/egress-service.js';
import type { SessionManager } from '../../sessions/session-manager.js';
import { errorResponses, NetworkPolicy, SessionParams } from '../schemas.js';

const NetworkView = Type.Object({
  session_id: Type.String(),
  network: Type.Union([NetworkPolicy, Type.Null()]),
});

const AuditEntry = Type.Object({
  time: Type.String(),
  session_id: Type.String(),
  method: Type.String(),
  host: Type.String(),
  port: Type.Integer(),
  address: Type.Optional(Type.String()),
  decision: Type.Union([Type.Literal('allowed'), Type.Literal('denied')]),
  rule: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  intercepted: Type.Boolean(),
  bytes_out: Type.Integer(),
  bytes_in: Type.Integer(),
  duration_ms: Type.Integer(),
  error: Type.Optional(Type.String()),
});

/** A session's egress policy (read and replace) and its audit trail: thin over the services. */
export const networkRoutes: FastifyPluginAsyncTypebox<{
  sessions: SessionManager;
  egress: EgressService | undefined;
}> = async (app, { sessions, egress }) => {
  app.get(
    '/v1/sessions/:id/network',
    {
      schema: {
        tags: ['network'],
        summary: 'Read a session’s egress policy (null: no network)',
        params: SessionParams,
        response: { 200: NetworkView, ...errorResponses(401, 404, 410) },
      },
    },
    async (request) => {
      const session = sessions.get(request.params.id);
      return { session_id: session.id, network: session.network ?? null };
    },
  );

  app.put(
    '/v1/sessions/:id/network',
    {
      schema: {
        tags: ['network'],
        summary: 'Replace a running session’s egress policy; new connections follow it',
        params: SessionParams,
        body: NetworkPolicy,
        response: { 200: NetworkView, ...errorResponses(400, 401, 403, 404, 410) },
      },
    },
    async (request) => {
      const session = sessions.setNetwork(request.params.id, request.body);
      return { session_id: session.id, network: session.network ?? null };
    },
  );

  app.get(
    '/v1/sessions/:id/network/log',
    {
      schema: {
        tags: ['network'],
        summary: 'Recent egress decisions of a session, oldest first',
        params: SessionParams,
        response: {
          200: Type.Object({ entries: Type.Array(AuditEntry) }),
          ...errorResponses(401, 404, 410),
        },
      },
    },
    async (request) => {
      const session = sessions.get(request.params.id);
      return { entries: egress?.log(session.id) ?? [] };
    },
  );
};

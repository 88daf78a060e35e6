import type { FastifyInstance } from 'fastify';

/**
 * Ends the socket of an upgrade request that was answered over HTTP instead of upgraded (401 from
 * the auth hook, 404, 410). @fastify/websocket routes every upgrade through Fastify and destroys
 * the socket itself only when its own hooks ran; when an earlier hook refused the request, the
 * socket, which no HTTP parser owns any more, would stay open half-closed, and `close()` would
 * wait for it forever. Registered at the root so it covers every route.
 */
export function closeRefusedUpgrades(app: FastifyInstance): void {
  app.addHook('onResponse', async (request) => {
    if (request.headers.upgrade?.toLowerCase() === 'websocket') request.raw.socket.destroy();
  });
}

import type { FastifyInstance } from 'fastify';

/** Starting and stopping a worker's or a coordinator's HTTP server the same way. */

/** Requests still running this long after a stop are cut: a stop must not wait for a long exec. */
export const CLOSE_GRACE_MS = 3000;

/** Stops taking requests, lets running ones finish for a moment, then cuts what is left. */
export async function closeWithGrace(
  app: FastifyInstance,
  graceMs = CLOSE_GRACE_MS,
): Promise<void> {
  const cut = setTimeout(() => app.server.closeAllConnections(), graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}

/** Listens, then answers the URL clients use (the real port when 0 was asked for). */
export async function listenAt(app: FastifyInstance, host: string, port: number): Promise<URL> {
  await app.listen({ host, port });
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return new URL(`http://${host.includes(':') ? `[${host}]` : host}:${bound}`);
}

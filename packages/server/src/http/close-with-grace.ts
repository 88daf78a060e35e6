import type { FastifyInstance } from 'fastify';

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

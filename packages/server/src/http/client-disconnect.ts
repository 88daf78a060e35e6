import type { FastifyReply } from 'fastify';

/**
 * Aborts when the client goes away before its answer is complete: its command is killed, its
 * proxied request cancelled, its new session ended.
 */
export function abortOnDisconnect(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

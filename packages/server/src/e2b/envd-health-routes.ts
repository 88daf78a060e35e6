import type { EnvdMount } from './sandbox-scope.js';

/**
 * envd's `GET /health`: 204 while the sandbox lives. The SDK's `isRunning()` calls it, and reads
 * the 502 the scope answers for an ended sandbox as "not running".
 */
export const envdHealthRoutes: EnvdMount = async (scope, { sessionOf }) => {
  scope.get('/health', { config: { e2bPort: 'any' } }, async (request, reply) => {
    sessionOf(request);
    return reply.code(204).send();
  });
};

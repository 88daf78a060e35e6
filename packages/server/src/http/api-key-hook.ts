import type { FastifyInstance } from 'fastify';
import { isE2bPath } from '../e2b/e2b-face.js';
import { createBearerCheck } from './auth.js';
import { isDocumentationRoute } from './openapi.js';
import { isConsoleRoute } from './routes/console-routes.js';
import { authorizationOf } from './websocket-bearer.js';

/** Routes that answer without a key, so probes and load balancers need no secret. */
const PUBLIC_ROUTES = new Set(['/health']);

/**
 * Every request of a worker or coordinator with an API key needs it (`Authorization`, or from a
 * browser's WebSocket the subprotocol), but for /health, the docs, the console's static files
 * (the page asks for the key before it calls the API) and the E2B face, which checks its own
 * credentials (X-API-KEY; the sandbox's access token under the sandbox URL).
 */
export function installApiKeyCheck(app: FastifyInstance, apiKey: string): void {
  const check = createBearerCheck(apiKey);
  app.addHook('onRequest', async (request) => {
    const url = request.routeOptions.url ?? '';
    const open =
      PUBLIC_ROUTES.has(url) ||
      isDocumentationRoute(url) ||
      isConsoleRoute(url) ||
      isE2bPath(request.url);
    if (!open) check(authorizationOf(request));
  });
}

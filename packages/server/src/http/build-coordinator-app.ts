import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import { createBearerCheck } from './auth.js';
import type { FaceSettings } from './build-app.js';
import { installErrorHandling } from './error-handler.js';
import { HostOriginGuard, installHostOriginGuard } from './host-origin-guard.js';
import { closeRefusedUpgrades } from './websocket-upgrades.js';
import { isDocumentationRoute } from './openapi.js';
import { mcpRoutes } from '../mcp/mcp-routes.js';
import { coordinatorRoutes, type CoordinatorRouteOptions } from './routes/coordinator-routes.js';
import { coordinatorPtyProxy } from './routes/coordinator-process-routes.js';
import { serviceRoutes, type HealthReport } from './routes/service-routes.js';
import { consoleAssetsDir, consoleRoutes, isConsoleRoute } from './routes/console-routes.js';
import { authorizationOf } from './websocket-bearer.js';

export interface CoordinatorAppServices extends CoordinatorRouteOptions {
  health: () => Promise<HealthReport>;
  registry: Registry;
  log: FastifyBaseLogger;
  apiKey: string | undefined;
  /** Who may call (Host and Origin rules) and the MCP face's idle lease. */
  faces: FaceSettings;
}

/** Routes that answer without a key, as on a worker. */
const PUBLIC_ROUTES = new Set(['/health']);

/** Builds the coordinator's HTTP application (the worker's API, proxied). It never listens. */
export async function buildCoordinatorApp(
  services: CoordinatorAppServices,
): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: services.log,
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>();

  installErrorHandling(app);
  installHostOriginGuard(app, new HostOriginGuard(services.faces));
  closeRefusedUpgrades(app);

  // Bodies stay unread streams: the worker validates them, and uploads must not be buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  if (services.apiKey !== undefined) {
    const check = createBearerCheck(services.apiKey);
    app.addHook('onRequest', async (request) => {
      const url = request.routeOptions.url ?? '';
      if (!PUBLIC_ROUTES.has(url) && !isDocumentationRoute(url) && !isConsoleRoute(url))
        check(authorizationOf(request));
    });
  }

  await app.register(coordinatorRoutes, services);
  await app.register(coordinatorPtyProxy, services);
  await app.register(serviceRoutes, { health: services.health, registry: services.registry });
  await app.register(consoleRoutes, {
    apiKey: services.apiKey,
    assetsDir: consoleAssetsDir(),
  });
  // MCP at /mcp: its tools call this coordinator's API, so sessions spread like any others.
  await app.register(mcpRoutes, { idleTimeoutMs: services.faces.mcpIdleTimeoutSeconds * 1000 });
  return app;
}

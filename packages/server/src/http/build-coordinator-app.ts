import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import { installApiKeyCheck } from './api-key-hook.js';
import type { FaceSettings } from './build-app.js';
import { installErrorHandling } from './error-handler.js';
import { HostOriginGuard, installHostOriginGuard } from './host-origin-guard.js';
import { closeRefusedUpgrades } from './websocket-upgrades.js';
import { mcpRoutes } from '../mcp/mcp-routes.js';
import { coordinatorRoutes, type CoordinatorRouteOptions } from './routes/coordinator-routes.js';
import { coordinatorPtyProxy } from './routes/coordinator-process-routes.js';
import {
  coordinatorPortRoutes,
  installCoordinatorPreviewHosts,
} from './routes/coordinator-port-routes.js';
import { serviceRoutes, type HealthReport } from './routes/service-routes.js';
import { registerCoordinatorE2bFace } from '../e2b/e2b-face.js';
import type { WorkerDirectory } from '../coordinator/worker-directory.js';
import { consoleAssetsDir, consoleRoutes } from './routes/console-routes.js';

export interface CoordinatorAppServices extends CoordinatorRouteOptions {
  health: () => Promise<HealthReport>;
  registry: Registry;
  log: FastifyBaseLogger;
  apiKey: string | undefined;
  /** Who may call (Host and Origin rules) and the MCP face's idle lease. */
  faces: FaceSettings;
  /** The E2B face (`/e2b`, docs/e2b.md); left out without it. */
  e2b?: { directory: WorkerDirectory };
}

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
  const previewDomain = services.faces.previewDomain ?? 'localhost';
  const workerKey = services.workerApiKey ?? services.apiKey;
  // Before the guard: a preview host is a sandbox's server, never the API.
  installCoordinatorPreviewHosts(app, { router: services.router, workerKey }, previewDomain);
  installHostOriginGuard(app, new HostOriginGuard(services.faces));
  closeRefusedUpgrades(app);

  // Bodies stay unread streams: the worker validates them, and uploads must not be buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  if (services.apiKey !== undefined) installApiKeyCheck(app, services.apiKey);

  await app.register(coordinatorRoutes, services);
  await app.register(coordinatorPtyProxy, services);
  await app.register(coordinatorPortRoutes, {
    ...services,
    workerApiKey: workerKey,
    previewDomain,
  });
  await app.register(serviceRoutes, { health: services.health, registry: services.registry });
  await app.register(consoleRoutes, {
    apiKey: services.apiKey,
    assetsDir: consoleAssetsDir(),
  });
  // MCP at /mcp: its tools call this coordinator's API, so sessions spread like any others.
  await app.register(mcpRoutes, { idleTimeoutMs: services.faces.mcpIdleTimeoutSeconds * 1000 });
  if (services.e2b !== undefined) {
    await registerCoordinatorE2bFace(app, {
      router: services.router,
      directory: services.e2b.directory,
      proxy: services.proxy,
      workerApiKey: services.workerApiKey,
      apiKey: services.apiKey,
      previewDomain,
    });
  }
  return app;
}

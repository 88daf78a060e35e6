import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import type { CodeService } from '../code/code-service.js';
import type { ExecService } from '../exec/exec-service.js';
import type { FileService } from '../files/file-service.js';
import type { WatchService } from '../files/watch-service.js';
import type { ProcessService } from '../processes/process-service.js';
import { processRoutes } from './routes/process-routes.js';
import { mcpRoutes } from '../mcp/mcp-routes.js';
import { ServiceSandboxSource } from '../mcp/service-sandbox-source.js';
import type { SessionManager } from '../sessions/session-manager.js';
import { installApiKeyCheck } from './api-key-hook.js';
import { installErrorHandling } from './error-handler.js';
import {
  HostOriginGuard,
  installHostOriginGuard,
  type HostOriginSettings,
} from './host-origin-guard.js';
import { installJsonBodies } from './json-bodies.js';
import { closeRefusedUpgrades } from './websocket-upgrades.js';
import { registerOpenApi } from './openapi.js';
import { codeRoutes } from './routes/code-routes.js';
import { execRoutes } from './routes/exec-routes.js';
import { fileRoutes } from './routes/file-routes.js';
import { serviceRoutes, type HealthReport } from './routes/service-routes.js';
import { sessionRoutes } from './routes/session-routes.js';
import { templateRoutes } from './routes/template-routes.js';
import type { TemplateView } from '../templates/template-pools.js';
import { networkRoutes } from './routes/network-routes.js';
import type { PortService } from '../ports/port-service.js';
import { installPreviewHosts, portRoutes } from './routes/port-routes.js';
import { consoleAssetsDir, consoleRoutes } from './routes/console-routes.js';
import type { EgressService } from '../network/egress-service.js';
import { registerE2bFace } from '../e2b/e2b-face.js';
import { WorkerControlBackend } from '../e2b/worker-control-backend.js';
import type { E2bResources } from '../e2b/e2b-sandbox-view.js';

export interface AppServices {
  sessions: SessionManager;
  templates: () => TemplateView[];
  exec: ExecService;
  /** The code interpreter (cells and contexts); its routes are left out without it. */
  code?: CodeService;
  files: FileService;
  health: () => Promise<HealthReport>;
  registry: Registry;
  log: FastifyBaseLogger;
  apiKey: string | undefined;
  uploadLimitBytes: number;
  /** Egress by domain (network routes); absent when the runtime cannot give sessions network. */
  egress?: EgressService;
  /** Background processes, terminals and watches (absent in apps built without them). */
  processes?: { processes: ProcessService; watches: WatchService };
  /** Who may call (Host and Origin rules) and the MCP face's idle lease: the worker's config. */
  faces: FaceSettings;
  /** The E2B face (`/e2b`, docs/e2b.md); left out without it. */
  e2b?: { resources: E2bResources };
  /** Preview URLs (ports of sessions); their routes and hosts are left out without it. */
  ports?: PortService;
}

/** The settings of the faces every server has (the worker's and coordinator's configs fit). */
export interface FaceSettings extends HostOriginSettings {
  mcpIdleTimeoutSeconds: number;
  /** Preview hosts are `{port}-{session id}.{previewDomain}` (default `localhost`). */
  previewDomain?: string;
}

/** Builds the worker's HTTP application. It never listens: the server (or a test) does. */
export async function buildApp(services: AppServices): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: services.log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 16 * 1024 * 1024,
    // Unknown fields are an error (not silently dropped), and types are not coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>();

  installErrorHandling(app);
  const previewDomain = services.faces.previewDomain ?? 'localhost';
  // Before the guard: a preview host is the sandbox's server, never the API.
  if (services.ports) installPreviewHosts(app, services.ports, previewDomain);
  installHostOriginGuard(app, new HostOriginGuard(services.faces));
  closeRefusedUpgrades(app);

  installJsonBodies(app);

  if (services.apiKey !== undefined) installApiKeyCheck(app, services.apiKey);

  app.addHook('onResponse', async (request, reply) => {
    request.log.debug(
      {
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });

  await registerOpenApi(app, {
    title: 'sandpool worker',
    // The HTTP API's version (the /v1 routes), not the package's.
    version: 'v1',
    description:
      'Pre-warmed, hardened code-execution sandboxes for AI agents. Errors are `{"error": {"code", "message"}}`.',
  });
  await app.register(sessionRoutes, { sessions: services.sessions });
  await app.register(templateRoutes, { templates: services.templates });
  await app.register(networkRoutes, { sessions: services.sessions, egress: services.egress });
  await app.register(execRoutes, { exec: services.exec });
  if (services.code !== undefined) await app.register(codeRoutes, { code: services.code });
  await app.register(fileRoutes, {
    files: services.files,
    uploadLimitBytes: services.uploadLimitBytes,
  });
  if (services.processes) await app.register(processRoutes, services.processes);
  if (services.ports) await app.register(portRoutes, { ports: services.ports, previewDomain });
  await app.register(serviceRoutes, { health: services.health, registry: services.registry });
  await app.register(consoleRoutes, {
    apiKey: services.apiKey,
    assetsDir: consoleAssetsDir(),
  });
  // MCP is one more face over the same services, called in-process (not through this server's
  // own HTTP API).
  await app.register(mcpRoutes, {
    sandboxes: new ServiceSandboxSource(services),
    idleTimeoutMs: services.faces.mcpIdleTimeoutSeconds * 1000,
  });
  if (services.e2b !== undefined) {
    await registerE2bFace(app, {
      backend: new WorkerControlBackend(services.sessions, services.e2b.resources),
      apiKey: services.apiKey,
      previewDomain,
      services: {
        sessions: services.sessions,
        files: services.files,
        processes: services.processes?.processes,
        watches: services.processes?.watches,
        code: services.code,
        uploadLimitBytes: services.uploadLimitBytes,
      },
    });
  }
  return app;
}

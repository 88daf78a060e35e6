import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import type { ExecService } from '../exec/exec-service.js';
import type { FileService } from '../files/file-service.js';
import type { WatchService } from '../files/watch-service.js';
import type { ProcessService } from '../processes/process-service.js';
import { processRoutes } from './routes/process-routes.js';
import { mcpRoutes } from '../mcp/mcp-routes.js';
import type { SessionManager } from '../sessions/session-manager.js';
import { createBearerCheck } from './auth.js';
import { installErrorHandling } from './error-handler.js';
import { closeRefusedUpgrades } from './websocket-upgrades.js';
import { isDocumentationRoute, registerOpenApi } from './openapi.js';
import { execRoutes } from './routes/exec-routes.js';
import { fileRoutes } from './routes/file-routes.js';
import { serviceRoutes, type HealthReport } from './routes/service-routes.js';
import { sessionRoutes } from './routes/session-routes.js';

export interface AppServices {
  sessions: SessionManager;
  exec: ExecService;
  files: FileService;
  health: () => Promise<HealthReport>;
  registry: Registry;
  log: FastifyBaseLogger;
  apiKey: string | undefined;
  uploadLimitBytes: number;
  /** Background processes, terminals and watches (absent in apps built without them). */
  processes?: { processes: ProcessService; watches: WatchService };
}

/** Routes that answer without a key, so probes and load balancers need no secret. */
const PUBLIC_ROUTES = new Set(['/health']);

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
  closeRefusedUpgrades(app);

  // An empty body means "no options" (`curl -X POST .../create_session` works as in the seed).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new SandpoolError('invalid_request', 'The body is not valid JSON.'), undefined);
    }
  });
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.method === 'POST') request.body = {};
  });

  if (services.apiKey !== undefined) {
    const check = createBearerCheck(services.apiKey);
    app.addHook('onRequest', async (request) => {
      const url = request.routeOptions.url ?? '';
      if (!PUBLIC_ROUTES.has(url) && !isDocumentationRoute(url)) {
        check(request.headers.authorization);
      }
    });
  }

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
  await app.register(execRoutes, { exec: services.exec });
  await app.register(fileRoutes, {
    files: services.files,
    uploadLimitBytes: services.uploadLimitBytes,
  });
  if (services.processes) await app.register(processRoutes, services.processes);
  await app.register(serviceRoutes, { health: services.health, registry: services.registry });
  // MCP clients call this worker's own API through the SDK, with the key they authenticated with.
  await app.register(mcpRoutes);
  return app;
}

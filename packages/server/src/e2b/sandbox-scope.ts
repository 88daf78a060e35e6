import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { CodeService } from '../code/code-service.js';
import type { FileService } from '../files/file-service.js';
import type { WatchService } from '../files/watch-service.js';
import type { ProcessService } from '../processes/process-service.js';
import type { Session, SessionManager } from '../sessions/session-manager.js';
import { installE2bErrors } from './e2b-errors.js';
import { ENVD_PORT, JUPYTER_PORT } from './e2b-sandbox-view.js';
import { secretMatches } from './secret-match.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The sandbox port (`E2b-Sandbox-Port`) a route of the E2B sandbox scope answers on: envd's
     * 49983 when unset, the code interpreter's 49999, or `any`.
     */
    e2bPort?: number | 'any';
  }
}

/** What a set of routes mounted in the sandbox scope is given. */
export interface EnvdContext {
  /**
   * The session the request is for: resolved from `E2b-Sandbox-Id`, its access token checked
   * (`X-Access-Token`, or `E2B-Traffic-Access-Token`), and its port matched, before any handler
   * runs. Throws (a bug) when called for a request outside the scope.
   */
  sessionOf: (request: FastifyRequest) => Session;
  /** The worker's services the envd routes translate to. */
  services: EnvdServices;
}

/** The worker's services, as `buildApp` has them. */
export interface EnvdServices {
  sessions: SessionManager;
  files: FileService;
  /** Background processes and terminals (absent in apps built without them). */
  processes?: ProcessService;
  watches?: WatchService;
  /** The code interpreter's cells and contexts (absent in apps built without it). */
  code?: CodeService;
  /** The largest upload a request may carry (`--upload-limit-bytes`). */
  uploadLimitBytes: number;
}

/**
 * Routes mounted into the sandbox scope (under `E2B_SANDBOX_URL`). Each mount gets its own
 * encapsulated Fastify context without body parsers: it adds those it needs. Its errors answer in
 * E2B's shape (`{"code","message"}`) unless it sets its own handler (Connect does).
 */
export type EnvdMount = (scope: FastifyInstance, context: EnvdContext) => Promise<void>;

export interface SandboxScopeOptions {
  services: EnvdServices;
  mounts: readonly EnvdMount[];
}

/**
 * The in-sandbox face of E2B: one URL for every sandbox (`E2B_SANDBOX_URL`), the sandbox and its
 * port named by the `E2b-Sandbox-Id` and `E2b-Sandbox-Port` headers. Knowing a sandbox id is not
 * enough: every request carries the sandbox's own access token (sandpool's API key is no
 * substitute), compared in constant time.
 */
export const sandboxScope: FastifyPluginAsync<SandboxScopeOptions> = async (
  scope,
  { services, mounts },
) => {
  const { sessions } = services;
  installE2bErrors(scope, 'sandbox');
  scope.removeAllContentTypeParsers();
  const resolved = new WeakMap<FastifyRequest, Session>();

  scope.addHook('onRequest', async (request) => {
    const id = headerOf(request, 'e2b-sandbox-id');
    if (id === undefined)
      throw new SandpoolError(
        'invalid_request',
        'Missing E2b-Sandbox-Id header: the E2B SDK sends it when E2B_SANDBOX_URL points here.',
      );
    const port = Number(headerOf(request, 'e2b-sandbox-port') ?? 'NaN');
    const wanted = request.routeOptions.config?.e2bPort ?? ENVD_PORT;
    const session = sessions.get(id);
    const token =
      headerOf(request, 'x-access-token') ?? headerOf(request, 'e2b-traffic-access-token');
    if (!secretMatches(token, session.accessToken))
      throw new SandpoolError(
        'unauthorized',
        `Missing or wrong X-Access-Token for sandbox ${id}: send the envdAccessToken that create or connect returned (the SDK does).`,
      );
    if (request.routeOptions.url !== undefined && wanted !== 'any' && port !== wanted)
      throw new SandpoolError(
        'invalid_request',
        `Port ${Number.isNaN(port) ? '(none)' : port} of sandbox ${id} has no route ${request.method} ${request.url.split('?')[0]} here: E2B_SANDBOX_URL serves envd (port ${ENVD_PORT}) and the code interpreter (port ${JUPYTER_PORT}); reach other ports through getHost(port).`,
      );
    resolved.set(request, session);
  });

  const context: EnvdContext = {
    services,
    sessionOf: (request) => {
      const session = resolved.get(request);
      if (session === undefined)
        throw new Error('sessionOf called for a request outside the E2B sandbox scope');
      return session;
    },
  };
  for (const mount of mounts) await scope.register(async (child) => mount(child, context));
};

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

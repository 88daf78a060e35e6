import type { FastifyInstance } from 'fastify';
import type { SessionRouter } from '../coordinator/session-router.js';
import type { WorkerDirectory } from '../coordinator/worker-directory.js';
import type { WorkerProxy } from '../coordinator/worker-proxy.js';
import { controlPlaneRoutes } from './control-plane-routes.js';
import { CoordinatorControlBackend } from './coordinator-control-backend.js';
import { coordinatorSandboxProxy } from './coordinator-sandbox-proxy.js';
import type { E2bControlBackend } from './e2b-control-backend.js';
import { ENVD_MOUNTS } from './envd-mounts.js';
import { sandboxScope, type EnvdMount, type EnvdServices } from './sandbox-scope.js';

/** Where the E2B face lives: `E2B_API_URL` is `{server}/e2b`, `E2B_SANDBOX_URL` `{server}/e2b/sandbox`. */
export const E2B_PREFIX = '/e2b';
export const E2B_SANDBOX_PREFIX = '/e2b/sandbox';

/** Whether a request path belongs to the E2B face, which checks its own credentials. */
export function isE2bPath(url: string): boolean {
  return url === E2B_PREFIX || url.startsWith(`${E2B_PREFIX}/`) || url.startsWith(`${E2B_PREFIX}?`);
}

export interface E2bFaceOptions {
  backend: E2bControlBackend;
  apiKey: string | undefined;
  previewDomain: string;
  /** The worker's services: the sandbox scope serves them (absent on a coordinator, which proxies). */
  services?: EnvdServices;
  /** Routes of the sandbox scope; default `ENVD_MOUNTS`. */
  mounts?: readonly EnvdMount[];
}

/** Registers E2B's control plane and, on a worker, its sandbox scope. */
export async function registerE2bFace(
  app: FastifyInstance,
  options: E2bFaceOptions,
): Promise<void> {
  await app.register(controlPlaneRoutes, {
    prefix: E2B_PREFIX,
    backend: options.backend,
    apiKey: options.apiKey,
    previewDomain: options.previewDomain,
  });
  if (options.services !== undefined) {
    await app.register(sandboxScope, {
      prefix: E2B_SANDBOX_PREFIX,
      services: options.services,
      mounts: options.mounts ?? ENVD_MOUNTS,
    });
  }
}

export interface CoordinatorE2bOptions {
  router: SessionRouter;
  directory: WorkerDirectory;
  proxy: WorkerProxy;
  workerApiKey: string | undefined;
  apiKey: string | undefined;
  previewDomain: string;
}

/** Registers E2B's control plane and the sandbox scope's proxy on a coordinator. */
export async function registerCoordinatorE2bFace(
  app: FastifyInstance,
  options: CoordinatorE2bOptions,
): Promise<void> {
  await app.register(controlPlaneRoutes, {
    prefix: E2B_PREFIX,
    backend: new CoordinatorControlBackend(options),
    apiKey: options.apiKey,
    previewDomain: options.previewDomain,
  });
  await app.register(coordinatorSandboxProxy, {
    prefix: E2B_SANDBOX_PREFIX,
    router: options.router,
    proxy: options.proxy,
  });
}

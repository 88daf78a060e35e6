import { envdConnectRoutes } from './connect/envd-connect-routes.js';
import { envdFileRoutes } from './envd-file-routes.js';
import { envdHealthRoutes } from './envd-health-routes.js';
import { jupyterRoutes } from './jupyter-routes.js';
import type { EnvdMount } from './sandbox-scope.js';

/**
 * Everything served under `E2B_SANDBOX_URL`, in the sandbox scope (session resolved, access token
 * checked). To serve more envd routes, add a mount here: `(scope, { sessionOf, services }) => ...`.
 */
export const ENVD_MOUNTS: readonly EnvdMount[] = [
  envdHealthRoutes,
  envdFileRoutes,
  jupyterRoutes,
  envdConnectRoutes,
];

import type { SessionView } from '../sessions/session-manager.js';

/**
 * The envd version sandpool announces. The SDK turns features on and off by it: 0.5.7 and later
 * upload files as octet-stream (streams, gzip) and may close stdin; 0.6.2 would let it send file
 * metadata headers (`X-Metadata-*`), which sandpool cannot keep, and 0.6.3 watch events with
 * entry info: below those, the SDK refuses them itself with a clear TemplateError.
 */
export const ENVD_VERSION = '0.5.7';

/** envd's port; `E2b-Sandbox-Port` names it for the process, filesystem and file routes. */
export const ENVD_PORT = 49983;
/** The code interpreter's Jupyter server port (`/execute`, `/contexts`). */
export const JUPYTER_PORT = 49999;

/** E2B's default sandbox life when a create names no timeout (the SDK's documented 5 minutes). */
export const DEFAULT_TIMEOUT_SECONDS = 300;

/** E2B's `Sandbox` (create and connect answers). */
export interface E2bSandbox {
  templateID: string;
  sandboxID: string;
  alias: string;
  clientID: string;
  envdVersion: string;
  envdAccessToken: string;
  trafficAccessToken: string;
  domain: string;
}

/** E2B's `SandboxDetail` (get) and `ListedSandbox` (list): the same fields here. */
export interface E2bSandboxDetail {
  templateID: string;
  alias: string;
  sandboxID: string;
  clientID: string;
  startedAt: string;
  endAt: string;
  envdVersion: string;
  envdAccessToken: string;
  domain: string;
  cpuCount: number;
  memoryMB: number;
  diskSizeMB: number;
  metadata: Record<string, string>;
  state: 'running';
  volumeMounts: never[];
}

/**
 * The sandpool template an E2B template id names: E2B's code interpreter template
 * (`code-interpreter-v1`, the `@e2b/code-interpreter` default) is sandpool's `code-interpreter`;
 * every other name is taken as is (`base` is `base`).
 */
export function sandpoolTemplateOf(e2bTemplate: string): string {
  return e2bTemplate === 'code-interpreter-v1' ? 'code-interpreter' : e2bTemplate;
}

/** What a sandbox's resources are, as E2B reports them. */
export interface E2bResources {
  cpuCount: number;
  memoryMB: number;
  diskSizeMB: number;
}

/** How clients reach a sandbox: the domain `getHost(port)` appends to `{port}-{id}.`. */
export interface E2bReach {
  /** `{previewDomain}:{port}` of the server the client called. */
  domain: string;
}

export function e2bSandboxOf(view: SessionView, reach: E2bReach): E2bSandbox {
  return {
    templateID: view.template,
    sandboxID: view.session_id,
    alias: view.template,
    clientID: view.worker_id,
    envdVersion: ENVD_VERSION,
    envdAccessToken: view.access_token,
    // The preview routes accept the session's token in `e2b-traffic-access-token`.
    trafficAccessToken: view.access_token,
    domain: reach.domain,
  };
}

export function e2bDetailOf(
  view: SessionView,
  reach: E2bReach,
  resources: E2bResources,
): E2bSandboxDetail {
  return {
    templateID: view.template,
    alias: view.template,
    sandboxID: view.session_id,
    clientID: view.worker_id,
    startedAt: view.created_at,
    endAt: view.expires_at,
    envdVersion: ENVD_VERSION,
    envdAccessToken: view.access_token,
    domain: reach.domain,
    ...resources,
    metadata: view.metadata,
    state: 'running',
    volumeMounts: [],
  };
}

/**
 * `{previewDomain}:{port}` for a request that reached this server at `host` (the Host header):
 * the port the client used, so preview names resolve back to this server.
 */
export function domainFor(previewDomain: string, host: string | undefined): string {
  const port = /:(\d+)$/.exec(host ?? '')?.[1];
  return port === undefined ? previewDomain : `${previewDomain}:${port}`;
}

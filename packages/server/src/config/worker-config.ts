import { hostname, totalmem } from 'node:os';
import {
  configError,
  listenProblems,
  listenSettings,
  redisUrlProblem,
  resolveSettings,
  type ListenConfig,
  type RawFlags,
  type SettingOf,
} from './settings-table.js';
import { workerTemplates } from '../templates/worker-templates.js';
import { parseRuleList, parseTemplateDefaults } from '../network/egress-policy.js';

/**
 * Every worker setting, with its environment variable, CLI flag and default in one table.
 * The README's configuration table is printed from it (`sandpool serve --help` shows it too).
 */
export interface WorkerConfig extends ListenConfig {
  workerId: string;
  image: string;
  /** `--templates` as given (`base=5,code-interpreter=1`); see `workerTemplates`. */
  templates: string | undefined;
  poolSize: number;
  poolMin: number;
  poolMax: number;
  poolRefillConcurrency: number;
  maxSessions: number;
  memoryMb: number;
  cpus: number;
  pidsLimit: number;
  network: string;
  ociRuntime: string | undefined;
  homeSizeMb: number;
  tmpSizeMb: number;
  sessionTtlSeconds: number;
  maxSessionTtlSeconds: number;
  execTimeoutMs: number;
  maxExecTimeoutMs: number;
  outputLimitBytes: number;
  uploadLimitBytes: number;
  reapIntervalMs: number;
  poolCheckIntervalMs: number;
  engineCheckIntervalMs: number;
  poolShrinkAfterMs: number;
  reconcileIntervalMs: number;
  orphanGraceMs: number;
  deadWorkerGraceMs: number;
  /** Distributed mode: registers with this Redis and heartbeats into it. */
  redisUrl: string | undefined;
  /** The URL coordinators use to reach this worker; defaults to the address it listens on. */
  advertiseUrl: string | undefined;
  heartbeatIntervalMs: number;
  heartbeatTtlMs: number;
  /** Egress by domain (issue 14): what sessions may ask for at most; unset = no network. */
  egressAllowMax: string | undefined;
  egressTemplateDefaults: string | undefined;
  egressProxyPort: number;
  egressSubnets: string;
  egressMaxConnections: number;
  egressBytesPerSecond: number;
  egressCredentialsFile: string | undefined;
  egressTrustFile: string | undefined;
  egressDnsServers: string | undefined;
  /** Background processes (issue 12). */
  maxProcesses: number;
  processBufferBytes: number;
  processWorkerBufferBytes: number;
  processRetainSeconds: number;
}

const MiB = 1024 * 1024;

/**
 * A sandbox's memory limit is a ceiling, not a reservation (an idle one uses about 7 MiB), so the
 * default admits this many limits' worth per 80% of the host's memory.
 */
export const SESSIONS_PER_LIMIT = 4;

/** The default session limit: SESSIONS_PER_LIMIT × 80% of host memory ÷ the per-sandbox limit. */
export function defaultMaxSessions(hostMemoryBytes: number, memoryMb: number): number {
  return Math.max(
    1,
    Math.floor((SESSIONS_PER_LIMIT * 0.8 * hostMemoryBytes) / (Math.max(memoryMb, 1) * MiB)),
  );
}
/** The settings of egress by domain (network/): sessions with an allow-list behind a proxy. */
const EGRESS_SETTINGS: readonly SettingOf<WorkerConfig>[] = [
  {
    key: 'egressAllowMax',
    env: 'SANDPOOL_EGRESS_ALLOW_MAX',
    flag: '--egress-allow-max',
    kind: 'string',
    fallback: undefined,
    defaultLabel: 'unset (sessions cannot ask for network)',
    description:
      "Comma-separated patterns (`pypi.org,*.pythonhosted.org,api.github.com:443`) that bound every session's `network.allow_out`; a request beyond them answers 403 `egress_not_permitted`.",
  },
  {
    key: 'egressTemplateDefaults',
    env: 'SANDPOOL_EGRESS_TEMPLATE_DEFAULTS',
    flag: '--egress-template-defaults',
    kind: 'string',
    fallback: undefined,
    defaultLabel: 'unset',
    description:
      'Default `allow_out` per template for sessions that send no `network`: `base=pypi.org,*.pythonhosted.org;default=...` (`default`: templates without an entry of their own).',
  },
  {
    key: 'egressProxyPort',
    env: 'SANDPOOL_EGRESS_PROXY_PORT',
    flag: '--egress-proxy-port',
    kind: 'int',
    fallback: 3128,
    description:
      'Port of the egress proxy on each session network (the only port a sandbox with network reaches).',
  },
  {
    key: 'egressSubnets',
    env: 'SANDPOOL_EGRESS_SUBNETS',
    flag: '--egress-subnets',
    kind: 'string',
    fallback: '198.19.0.0/16',
    description:
      'IPv4 range the /29 session networks are taken from (must not clash with real networks).',
  },
  {
    key: 'egressMaxConnections',
    env: 'SANDPOOL_EGRESS_MAX_CONNECTIONS',
    flag: '--egress-max-connections',
    kind: 'int',
    fallback: 64,
    description: 'Upstream connections one session may hold open at once.',
  },
  {
    key: 'egressBytesPerSecond',
    env: 'SANDPOOL_EGRESS_BYTES_PER_SECOND',
    flag: '--egress-bytes-per-second',
    kind: 'int',
    fallback: 32 * MiB,
    description: 'Egress bandwidth of one session, each way (0: unlimited).',
  },
  {
    key: 'egressCredentialsFile',
    env: 'SANDPOOL_EGRESS_CREDENTIALS_FILE',
    flag: '--egress-credentials-file',
    kind: 'string',
    fallback: undefined,
    defaultLabel: 'unset',
    description:
      'JSON header rules the proxy adds (`[{"host":"api.github.com","headers":{"Authorization":"Bearer ${env:GH_TOKEN}"}}]`); TLS to those hosts is terminated with a per-worker CA.',
  },
  {
    key: 'egressTrustFile',
    env: 'SANDPOOL_EGRESS_TRUST_FILE',
    flag: '--egress-trust-file',
    kind: 'string',
    fallback: undefined,
    defaultLabel: 'unset',
    description:
      'PEM certificates (an internal CA) that sandboxes with network and the proxy trust besides the system roots.',
  },
  {
    key: 'egressDnsServers',
    env: 'SANDPOOL_EGRESS_DNS_SERVERS',
    flag: '--egress-dns-servers',
    kind: 'string',
    fallback: undefined,
    defaultLabel: "the host's resolver (`/etc/hosts` applies)",
    description: 'Comma-separated DNS servers the egress proxy asks instead of the host resolver.',
  },
];

export const WORKER_SETTINGS: readonly SettingOf<WorkerConfig>[] = [
  ...listenSettings<WorkerConfig>(5000),
  {
    key: 'workerId',
    env: 'SANDPOOL_WORKER_ID',
    flag: '--worker-id',
    kind: 'string',
    fallback: (p) => defaultWorkerId(p.port ?? 5000),
    defaultLabel: '`<hostname>-<port>`',
    description:
      'Names this worker in labels, logs and Redis; stable across restarts so leftovers can be removed.',
  },
  {
    key: 'image',
    env: 'SANDPOOL_IMAGE',
    flag: '--image',
    kind: 'string',
    fallback: 'sandpool/sandbox:latest',
    description: 'Image of the `base` template (built by `sandpool template build base`).',
  },
  {
    key: 'templates',
    env: 'SANDPOOL_TEMPLATES',
    flag: '--templates',
    kind: 'string',
    fallback: undefined,
    defaultLabel: '`base=5,code-interpreter=1` (base follows --pool-size)',
    description:
      'Templates to pool, `name=count[@image]` comma-separated; each gets its own warm pool. Images default to `sandpool/template-<name>:latest` (`base`: --image).',
  },
  {
    key: 'poolSize',
    env: 'SANDPOOL_POOL_SIZE',
    flag: '--pool-size',
    kind: 'int',
    fallback: 5,
    description:
      'Warm containers of the `base` template kept ready when demand is calm (the elastic target’s base; --templates sizes the others).',
  },
  {
    key: 'poolMin',
    env: 'SANDPOOL_POOL_MIN',
    flag: '--pool-min',
    kind: 'int',
    fallback: (p) => Math.min(2, p.poolSize ?? 5),
    defaultLabel: '`2` (or --pool-size when smaller)',
    description:
      'The elastic pool target never drops below this; below this many warm containers /health also names the last start error.',
  },
  {
    key: 'poolMax',
    env: 'SANDPOOL_POOL_MAX',
    flag: '--pool-max',
    kind: 'int',
    fallback: 20,
    description:
      'The pool target grows toward this while creates find the pool empty, and shrinks back toward --pool-size when calm.',
  },
  {
    key: 'poolRefillConcurrency',
    env: 'SANDPOOL_POOL_REFILL_CONCURRENCY',
    flag: '--pool-refill-concurrency',
    kind: 'int',
    fallback: 2,
    description: 'Containers started at once while refilling.',
  },
  {
    key: 'memoryMb',
    env: 'SANDPOOL_MEMORY_MB',
    flag: '--memory-mb',
    kind: 'int',
    fallback: 512,
    description: 'Memory per sandbox in MiB (swap equals memory: none).',
  },
  {
    // After memoryMb: its default is computed from it.
    key: 'maxSessions',
    env: 'SANDPOOL_MAX_SESSIONS',
    flag: '--max-sessions',
    kind: 'int',
    fallback: (p) => defaultMaxSessions(totalmem(), p.memoryMb ?? 512),
    defaultLabel: `from the host: ${SESSIONS_PER_LIMIT} × 80% of host memory ÷ --memory-mb (${defaultMaxSessions(24 * 1024 * MiB, 512)} on 24 GiB with 512 MiB)`,
    description:
      'Sessions this worker holds at once; past it, 503 capacity_exhausted. A create that finds the pool empty below this waits for a container to start.',
  },
  {
    key: 'cpus',
    env: 'SANDPOOL_CPUS',
    flag: '--cpus',
    kind: 'number',
    fallback: 0.5,
    description: 'CPUs per sandbox.',
  },
  {
    key: 'pidsLimit',
    env: 'SANDPOOL_PIDS_LIMIT',
    flag: '--pids-limit',
    kind: 'int',
    fallback: 256,
    description: 'Processes per sandbox.',
  },
  {
    key: 'network',
    env: 'SANDPOOL_NETWORK',
    flag: '--network',
    kind: 'string',
    fallback: 'none',
    description: 'Docker network mode of sandboxes; anything but `none` is an explicit opt-in.',
  },
  {
    key: 'ociRuntime',
    env: 'SANDPOOL_RUNTIME',
    flag: '--runtime',
    kind: 'string',
    fallback: undefined,
    defaultLabel: "the engine's default (runc)",
    description:
      'OCI runtime for sandboxes, as registered with the engine: `runsc` runs them under gVisor (`scripts/provision.sh --gvisor` sets it up).',
  },
  {
    key: 'homeSizeMb',
    env: 'SANDPOOL_HOME_SIZE_MB',
    flag: '--home-size-mb',
    kind: 'int',
    fallback: 256,
    description: 'Size of the tmpfs home (/home/sandboxuser) in MiB.',
  },
  {
    key: 'tmpSizeMb',
    env: 'SANDPOOL_TMP_SIZE_MB',
    flag: '--tmp-size-mb',
    kind: 'int',
    fallback: 64,
    description: 'Size of the tmpfs /tmp in MiB.',
  },
  {
    key: 'sessionTtlSeconds',
    env: 'SANDPOOL_SESSION_TTL_SECONDS',
    flag: '--session-ttl-seconds',
    kind: 'int',
    fallback: 3600,
    description: 'Session lifetime when the request names none.',
  },
  {
    key: 'maxSessionTtlSeconds',
    env: 'SANDPOOL_MAX_SESSION_TTL_SECONDS',
    flag: '--max-session-ttl-seconds',
    kind: 'int',
    fallback: 86400,
    description: 'Largest ttl_seconds a request may ask for.',
  },
  {
    key: 'execTimeoutMs',
    env: 'SANDPOOL_EXEC_TIMEOUT_MS',
    flag: '--exec-timeout-ms',
    kind: 'int',
    fallback: 60000,
    description: 'Exec timeout when the request names none.',
  },
  {
    key: 'maxExecTimeoutMs',
    env: 'SANDPOOL_MAX_EXEC_TIMEOUT_MS',
    flag: '--max-exec-timeout-ms',
    kind: 'int',
    fallback: 3600000,
    description: 'Largest timeout_ms a request may ask for.',
  },
  {
    key: 'outputLimitBytes',
    env: 'SANDPOOL_OUTPUT_LIMIT_BYTES',
    flag: '--output-limit-bytes',
    kind: 'int',
    fallback: 1 * MiB,
    description: 'Cap on each of stdout and stderr kept per exec; past it, `truncated: true`.',
  },
  {
    key: 'uploadLimitBytes',
    env: 'SANDPOOL_UPLOAD_LIMIT_BYTES',
    flag: '--upload-limit-bytes',
    kind: 'int',
    fallback: 100 * MiB,
    description: 'Largest file upload; past it, 413 payload_too_large.',
  },
  {
    key: 'reapIntervalMs',
    env: 'SANDPOOL_REAP_INTERVAL_MS',
    flag: '--reap-interval-ms',
    kind: 'int',
    fallback: 5000,
    description: 'How often expired sessions are ended.',
  },
  {
    key: 'poolCheckIntervalMs',
    env: 'SANDPOOL_POOL_CHECK_INTERVAL_MS',
    flag: '--pool-check-interval-ms',
    kind: 'int',
    fallback: 15000,
    description: 'How often idle pooled containers are checked and dead ones replaced.',
  },
  {
    key: 'engineCheckIntervalMs',
    env: 'SANDPOOL_ENGINE_CHECK_INTERVAL_MS',
    flag: '--engine-check-interval-ms',
    kind: 'int',
    fallback: 2000,
    description:
      'How often the Docker engine is pinged; while it does not answer, new sessions get 503.',
  },
  {
    key: 'poolShrinkAfterMs',
    env: 'SANDPOOL_POOL_SHRINK_AFTER_MS',
    flag: '--pool-shrink-after-ms',
    kind: 'int',
    fallback: 60000,
    description:
      'After this long without a create finding the pool empty, the pool target steps back toward --pool-size.',
  },
  {
    key: 'reconcileIntervalMs',
    env: 'SANDPOOL_RECONCILE_INTERVAL_MS',
    flag: '--reconcile-interval-ms',
    kind: 'int',
    fallback: 30000,
    description:
      'How often containers labelled with this worker that no pool or session owns are looked for (and removed after --orphan-grace-ms).',
  },
  {
    key: 'orphanGraceMs',
    env: 'SANDPOOL_ORPHAN_GRACE_MS',
    flag: '--orphan-grace-ms',
    kind: 'int',
    fallback: 60000,
    description:
      'A container of this worker that no pool or session owned for this long is removed (a container being started is not owned yet).',
  },
  {
    key: 'deadWorkerGraceMs',
    env: 'SANDPOOL_DEAD_WORKER_GRACE_MS',
    flag: '--dead-worker-grace-ms',
    kind: 'int',
    fallback: 600000,
    description:
      'Distributed mode: containers of a registered worker whose heartbeat has been gone this long are removed by any live worker on the same engine.',
  },
  {
    key: 'redisUrl',
    env: 'SANDPOOL_REDIS_URL',
    flag: '--redis',
    kind: 'string',
    fallback: undefined,
    defaultLabel: 'unset (standalone)',
    description:
      'Redis URL (`redis://host:6379`): register with coordinators, heartbeat, and re-adopt sessions after a restart.',
  },
  {
    key: 'advertiseUrl',
    env: 'SANDPOOL_ADVERTISE_URL',
    flag: '--advertise-url',
    kind: 'string',
    fallback: undefined,
    defaultLabel: 'the listen address',
    description:
      'URL coordinators reach this worker at (needed when listening on 0.0.0.0 or behind NAT).',
  },
  {
    key: 'heartbeatIntervalMs',
    env: 'SANDPOOL_HEARTBEAT_INTERVAL_MS',
    flag: '--heartbeat-interval-ms',
    kind: 'int',
    fallback: 2000,
    description: 'How often the worker renews its heartbeat in Redis.',
  },
  {
    key: 'heartbeatTtlMs',
    env: 'SANDPOOL_HEARTBEAT_TTL_MS',
    flag: '--heartbeat-ttl-ms',
    kind: 'int',
    fallback: 6000,
    description:
      'A heartbeat older than this marks the worker gone: its sessions answer 410, and it stops taking new sessions.',
  },
  ...EGRESS_SETTINGS,
  {
    key: 'maxProcesses',
    env: 'SANDPOOL_MAX_PROCESSES',
    flag: '--max-processes',
    kind: 'int',
    fallback: 32,
    description:
      'Background processes (running and recently exited) a session keeps; past it, 400 until one is killed.',
  },
  {
    key: 'processBufferBytes',
    env: 'SANDPOOL_PROCESS_BUFFER_BYTES',
    flag: '--process-buffer-bytes',
    kind: 'int',
    fallback: 1 * MiB,
    description:
      'Output kept per background process for readers to replay; older output is dropped (`truncated`).',
  },
  {
    key: 'processWorkerBufferBytes',
    env: 'SANDPOOL_PROCESS_WORKER_BUFFER_BYTES',
    flag: '--process-worker-buffer-bytes',
    kind: 'int',
    fallback: 128 * MiB,
    description: 'Output all background processes of the worker keep together.',
  },
  {
    key: 'processRetainSeconds',
    env: 'SANDPOOL_PROCESS_RETAIN_SECONDS',
    flag: '--process-retain-seconds',
    kind: 'int',
    fallback: 600,
    description: 'How long an exited process’s status and output stay readable.',
  },
];

export function defaultWorkerId(port: number): string {
  const host =
    hostname()
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .slice(0, 40) || 'worker';
  return `${host}-${port}`;
}

/**
 * Resolves the worker's configuration: a flag wins over the environment, which wins over the
 * default. `flags` is keyed by setting key (as commander gives it).
 */
export function loadWorkerConfig(
  flags: RawFlags<WorkerConfig> = {},
  env: NodeJS.ProcessEnv = process.env,
): WorkerConfig {
  const config = resolveSettings(WORKER_SETTINGS, flags, env);
  validateWorkerConfig(config);
  return config;
}

export function validateWorkerConfig(c: WorkerConfig): void {
  const problems = listenProblems(c);
  if (c.poolMin > c.poolMax)
    problems.push(`--pool-min (${c.poolMin}) exceeds --pool-max (${c.poolMax})`);
  if (c.poolMin > c.poolSize)
    problems.push(`--pool-min (${c.poolMin}) exceeds --pool-size (${c.poolSize})`);
  if (c.poolSize > c.poolMax)
    problems.push(`--pool-size (${c.poolSize}) exceeds --pool-max (${c.poolMax})`);
  try {
    workerTemplates(c);
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
  }
  if (c.poolRefillConcurrency < 1) problems.push('--pool-refill-concurrency must be at least 1');
  if (c.maxSessions < 1) problems.push('--max-sessions must be at least 1');
  if (c.reconcileIntervalMs < 100) problems.push('--reconcile-interval-ms must be at least 100');
  if (c.memoryMb < 16) problems.push('--memory-mb must be at least 16');
  if (c.pidsLimit < 8) problems.push('--pids-limit must be at least 8');
  if (c.sessionTtlSeconds < 1 || c.sessionTtlSeconds > c.maxSessionTtlSeconds) {
    problems.push('--session-ttl-seconds must be between 1 and --max-session-ttl-seconds');
  }
  if (c.execTimeoutMs < 1 || c.execTimeoutMs > c.maxExecTimeoutMs) {
    problems.push('--exec-timeout-ms must be between 1 and --max-exec-timeout-ms');
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(c.workerId)) {
    problems.push(`--worker-id "${c.workerId}" must be 1-63 letters, digits, '.', '_' or '-'`);
  }
  const redis = redisUrlProblem(c.redisUrl);
  if (redis) problems.push(redis);
  if (c.advertiseUrl !== undefined && !/^https?:\/\/[^/]+\/?$/.test(c.advertiseUrl)) {
    problems.push(`--advertise-url "${c.advertiseUrl}" must be http(s)://host:port`);
  }
  if (c.heartbeatIntervalMs < 100 || c.heartbeatTtlMs <= c.heartbeatIntervalMs) {
    problems.push('--heartbeat-interval-ms must be at least 100 and below --heartbeat-ttl-ms');
  }
  if (c.egressProxyPort < 1 || c.egressProxyPort > 65535) {
    problems.push('--egress-proxy-port must be 1-65535');
  }
  if (c.egressMaxConnections < 1) problems.push('--egress-max-connections must be at least 1');
  if (c.egressBytesPerSecond < 0) problems.push('--egress-bytes-per-second must be 0 or more');
  for (const [flag, check] of [
    ['--egress-allow-max', () => parseRuleList(c.egressAllowMax)],
    ['--egress-template-defaults', () => parseTemplateDefaults(c.egressTemplateDefaults)],
  ] as const) {
    try {
      check();
    } catch (error) {
      problems.push(`${flag}: ${(error as Error).message}`);
    }
  }
  if (c.maxProcesses < 1) problems.push('--max-processes must be at least 1');
  if (c.processBufferBytes < 4096 || c.processWorkerBufferBytes < c.processBufferBytes) {
    problems.push(
      '--process-buffer-bytes must be at least 4096 and at most --process-worker-buffer-bytes',
    );
  }
  if (problems.length > 0) throw configError(problems.join('; '));
}

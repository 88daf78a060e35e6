import { hostname } from 'node:os';
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

/**
 * Every worker setting, with its environment variable, CLI flag and default in one table.
 * The README's configuration table is printed from it (`sandpool serve --help` shows it too).
 */
export interface WorkerConfig extends ListenConfig {
  workerId: string;
  image: string;
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
  /** Distributed mode: registers with this Redis and heartbeats into it. */
  redisUrl: string | undefined;
  /** The URL coordinators use to reach this worker; defaults to the address it listens on. */
  advertiseUrl: string | undefined;
  heartbeatIntervalMs: number;
  heartbeatTtlMs: number;
  /** Background processes (issue 12). */
  maxProcesses: number;
  processBufferBytes: number;
  processWorkerBufferBytes: number;
  processRetainSeconds: number;
}

const MiB = 1024 * 1024;

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
    description: 'Sandbox image (built by `sandpool image build`).',
  },
  {
    key: 'poolSize',
    env: 'SANDPOOL_POOL_SIZE',
    flag: '--pool-size',
    kind: 'int',
    fallback: 5,
    description: 'Warm containers kept ready.',
  },
  {
    key: 'poolMin',
    env: 'SANDPOOL_POOL_MIN',
    flag: '--pool-min',
    kind: 'int',
    fallback: 2,
    description: 'Below this many warm containers the worker reports itself degraded in /health.',
  },
  {
    key: 'poolMax',
    env: 'SANDPOOL_POOL_MAX',
    flag: '--pool-max',
    kind: 'int',
    fallback: 20,
    description: 'Upper bound for --pool-size.',
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
    key: 'maxSessions',
    env: 'SANDPOOL_MAX_SESSIONS',
    flag: '--max-sessions',
    kind: 'int',
    fallback: 20,
    description: 'Sessions this worker holds at once; past it, 503 capacity_exhausted.',
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
  if (c.poolSize > c.poolMax)
    problems.push(`--pool-size (${c.poolSize}) exceeds --pool-max (${c.poolMax})`);
  if (c.poolRefillConcurrency < 1) problems.push('--pool-refill-concurrency must be at least 1');
  if (c.maxSessions < 1) problems.push('--max-sessions must be at least 1');
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
  if (c.maxProcesses < 1) problems.push('--max-processes must be at least 1');
  if (c.processBufferBytes < 4096 || c.processWorkerBufferBytes < c.processBufferBytes) {
    problems.push(
      '--process-buffer-bytes must be at least 4096 and at most --process-worker-buffer-bytes',
    );
  }
  if (problems.length > 0) throw configError(problems.join('; '));
}

import {
  apiKeyProblem,
  listenProblems,
  redisUrlProblem,
  configError,
  listenSettings,
  resolveSettings,
  type ListenConfig,
  type RawFlags,
  type SettingOf,
} from './settings-table.js';

/**
 * Every coordinator setting, with its environment variable, CLI flag and default in one table
 * (`sandpool coordinator --help` prints it).
 */
export interface CoordinatorConfig extends ListenConfig {
  redisUrl: string;
  /** Sent to workers instead of the client's own `Authorization` when set. */
  workerApiKey: string | undefined;
  /** A worker that takes longer to create a session is skipped for the next one. */
  createTimeoutMs: number;
  /** A worker that does not accept a connection in this time counts as unreachable. */
  workerConnectTimeoutMs: number;
  /** Largest JSON body the coordinator reads itself (create, /execute). */
  bodyLimitBytes: number;
}

export const COORDINATOR_SETTINGS: readonly SettingOf<CoordinatorConfig>[] = [
  ...listenSettings<CoordinatorConfig>(8000),
  {
    key: 'redisUrl',
    env: 'SANDPOOL_REDIS_URL',
    flag: '--redis',
    kind: 'string',
    fallback: 'redis://127.0.0.1:6379',
    description: 'Redis the workers register in (`redis://[:password@]host:port[/db]`).',
  },
  {
    key: 'workerApiKey',
    env: 'SANDPOOL_WORKER_API_KEY',
    flag: '--worker-api-key',
    kind: 'string',
    fallback: undefined,
    defaultLabel: "unset (forward the client's Authorization)",
    description: 'Key the coordinator sends to workers, when theirs differs from the public one.',
  },
  {
    key: 'createTimeoutMs',
    env: 'SANDPOOL_CREATE_TIMEOUT_MS',
    flag: '--create-timeout-ms',
    kind: 'int',
    fallback: 30000,
    description: 'A worker slower than this to create a session is skipped for the next one.',
  },
  {
    key: 'workerConnectTimeoutMs',
    env: 'SANDPOOL_WORKER_CONNECT_TIMEOUT_MS',
    flag: '--worker-connect-timeout-ms',
    kind: 'int',
    fallback: 3000,
    description: 'A worker that accepts no connection in this time counts as unreachable.',
  },
  {
    key: 'bodyLimitBytes',
    env: 'SANDPOOL_BODY_LIMIT_BYTES',
    flag: '--body-limit-bytes',
    kind: 'int',
    fallback: 16 * 1024 * 1024,
    description:
      'Largest JSON body the coordinator reads itself (create, /execute); uploads stream through.',
  },
];

/** Flag over environment over default, as for the worker. */
export function loadCoordinatorConfig(
  flags: RawFlags<CoordinatorConfig> = {},
  env: NodeJS.ProcessEnv = process.env,
): CoordinatorConfig {
  const config = resolveSettings(COORDINATOR_SETTINGS, flags, env);
  validateCoordinatorConfig(config);
  return config;
}

export function validateCoordinatorConfig(c: CoordinatorConfig): void {
  const problems = [
    ...listenProblems(c),
    redisUrlProblem(c.redisUrl),
    apiKeyProblem('--worker-api-key', c.workerApiKey),
    c.createTimeoutMs < 100 ? '--create-timeout-ms must be at least 100' : undefined,
    c.workerConnectTimeoutMs < 10 ? '--worker-connect-timeout-ms must be at least 10' : undefined,
  ].filter((p) => p !== undefined);
  if (problems.length > 0) throw configError(problems.join('; '));
}

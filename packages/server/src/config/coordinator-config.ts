import { SandpoolError } from '../errors/sandpool-error.js';
import { isLoopbackHost, parseSettingValue } from './worker-config.js';

/**
 * Every coordinator setting, with its environment variable, CLI flag and default in one table
 * (`sandpool coordinator --help` prints it).
 */
export interface CoordinatorConfig {
  host: string;
  port: number;
  redisUrl: string;
  apiKey: string | undefined;
  /** Sent to workers instead of the client's own `Authorization` when set. */
  workerApiKey: string | undefined;
  allowInsecureBind: boolean;
  /** A worker that takes longer to create a session is skipped for the next one. */
  createTimeoutMs: number;
  /** A worker that does not accept a connection in this time counts as unreachable. */
  workerConnectTimeoutMs: number;
  /** Largest JSON body the coordinator reads itself (create, /execute). */
  bodyLimitBytes: number;
  logLevel: string;
}

type Kind = 'string' | 'int' | 'number' | 'boolean';

interface CoordinatorSetting<K extends keyof CoordinatorConfig> {
  key: K;
  env: string;
  flag: string;
  kind: Kind;
  description: string;
  fallback: CoordinatorConfig[K];
  defaultLabel?: string;
}

type AnyCoordinatorSetting = {
  [K in keyof CoordinatorConfig]: CoordinatorSetting<K>;
}[keyof CoordinatorConfig];

export const COORDINATOR_SETTINGS: readonly AnyCoordinatorSetting[] = [
  {
    key: 'host',
    env: 'SANDPOOL_HOST',
    flag: '--host',
    kind: 'string',
    fallback: '127.0.0.1',
    description:
      'Address to listen on. A non-loopback address needs an API key (or --allow-insecure-bind).',
  },
  {
    key: 'port',
    env: 'SANDPOOL_PORT',
    flag: '--port',
    kind: 'int',
    fallback: 8000,
    description: 'TCP port to listen on.',
  },
  {
    key: 'redisUrl',
    env: 'SANDPOOL_REDIS_URL',
    flag: '--redis',
    kind: 'string',
    fallback: 'redis://127.0.0.1:6379',
    description: 'Redis the workers register in (`redis://[:password@]host:port[/db]`).',
  },
  {
    key: 'apiKey',
    env: 'SANDPOOL_API_KEY',
    flag: '--api-key',
    kind: 'string',
    fallback: undefined,
    defaultLabel: 'unset',
    description: 'When set, every route but /health needs `Authorization: Bearer <key>`.',
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
    key: 'allowInsecureBind',
    env: 'SANDPOOL_ALLOW_INSECURE_BIND',
    flag: '--allow-insecure-bind',
    kind: 'boolean',
    fallback: false,
    description: 'Allow listening on a non-loopback address without an API key.',
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
  {
    key: 'logLevel',
    env: 'SANDPOOL_LOG_LEVEL',
    flag: '--log-level',
    kind: 'string',
    fallback: 'info',
    description: 'pino log level (trace, debug, info, warn, error, silent).',
  },
];

/** Flag over environment over default, as for the worker. */
export function loadCoordinatorConfig(
  flags: Partial<Record<keyof CoordinatorConfig, string | boolean>> = {},
  env: NodeJS.ProcessEnv = process.env,
): CoordinatorConfig {
  const config: Partial<Record<keyof CoordinatorConfig, unknown>> = {};
  for (const setting of COORDINATOR_SETTINGS) {
    const raw = flags[setting.key] ?? env[setting.env];
    config[setting.key] =
      raw !== undefined && raw !== '' ? parseSettingValue(setting, raw) : setting.fallback;
  }
  const result = config as CoordinatorConfig;
  validateCoordinatorConfig(result);
  return result;
}

export function validateCoordinatorConfig(c: CoordinatorConfig): void {
  const problems: string[] = [];
  if (c.port > 65535) problems.push(`--port ${c.port} is not a TCP port`);
  if (!/^rediss?:\/\//.test(c.redisUrl)) {
    problems.push(`--redis "${c.redisUrl}" must be a redis:// or rediss:// URL`);
  }
  for (const [flag, key] of [
    ['--api-key', c.apiKey],
    ['--worker-api-key', c.workerApiKey],
  ] as const) {
    if (key !== undefined && key.length < 16)
      problems.push(`${flag} must be at least 16 characters`);
  }
  if (c.createTimeoutMs < 100) problems.push('--create-timeout-ms must be at least 100');
  if (c.workerConnectTimeoutMs < 10)
    problems.push('--worker-connect-timeout-ms must be at least 10');
  if (problems.length > 0) {
    throw new SandpoolError('invalid_request', `configuration: ${problems.join('; ')}`);
  }
}

/** The same rule as for workers: no open port without a key unless the operator says so. */
export function checkCoordinatorBind(c: CoordinatorConfig): void {
  if (!isLoopbackHost(c.host) && c.apiKey === undefined && !c.allowInsecureBind) {
    throw new SandpoolError(
      'invalid_request',
      `Refusing to listen on ${c.host} without an API key: set SANDPOOL_API_KEY (or pass --allow-insecure-bind if the network is trusted).`,
    );
  }
}

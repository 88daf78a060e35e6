import { Option, type Command } from 'commander';
import { SandpoolError } from '../errors/sandpool-error.js';

/**
 * Settings as tables: each has an environment variable, a CLI flag and a default, so the loader,
 * the `--help` text and the README's tables all come from one place.
 */
export type SettingKind = 'string' | 'int' | 'number' | 'boolean';

export interface Setting<C, K extends keyof C> {
  key: K;
  env: string;
  flag: string;
  kind: SettingKind;
  description: string;
  /** The default, or a function of the settings already read (the worker id depends on the port). */
  fallback: C[K] | ((partial: Partial<C>) => C[K]);
  /** Shown in docs and help instead of the default's value. */
  defaultLabel?: string;
}

/** Any one setting of config type C. */
export type SettingOf<C> = { [K in keyof C]: Setting<C, K> }[keyof C];

export type RawFlags<C> = Partial<Record<keyof C, string | boolean>>;

export function configError(message: string): SandpoolError {
  return new SandpoolError('invalid_request', `configuration: ${message}`);
}

/** Turns one raw value (from a flag or the environment) into the setting's type. */
export function parseSettingValue(
  setting: { flag: string; env: string; kind: SettingKind },
  raw: string | boolean,
): unknown {
  const source = `${setting.flag} / ${setting.env}`;
  switch (setting.kind) {
    case 'string':
      return String(raw);
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
      throw configError(`${source} must be true or false, got "${raw}"`);
    }
    case 'int': {
      const n = Number(raw);
      if (!Number.isSafeInteger(n) || n < 0) {
        throw configError(`${source} must be a whole number ≥ 0, got "${String(raw)}"`);
      }
      return n;
    }
    case 'number': {
      const n = Number(raw);
      if (!Number.isFinite(n) || n <= 0) {
        throw configError(`${source} must be a number > 0, got "${String(raw)}"`);
      }
      return n;
    }
  }
}

/** A flag wins over the environment, which wins over the default. */
export function resolveSettings<C>(
  settings: readonly SettingOf<C>[],
  flags: RawFlags<C>,
  env: NodeJS.ProcessEnv,
): C {
  const config: Partial<C> = {};
  for (const setting of settings) {
    const raw = flags[setting.key] ?? env[setting.env];
    const fallback = setting.fallback;
    config[setting.key] =
      raw !== undefined && raw !== ''
        ? (parseSettingValue(setting, raw) as C[keyof C])
        : typeof fallback === 'function'
          ? (fallback as (partial: Partial<C>) => C[keyof C])(config)
          : fallback;
  }
  return config as C;
}

/** What commander parsed (camel-cased flag names), keyed by setting key. */
export function flagsBySetting<K extends string>(
  opts: Record<string, unknown>,
  settings: readonly { key: K; flag: string }[],
): Partial<Record<K, string | boolean>> {
  const flags: Partial<Record<K, string | boolean>> = {};
  for (const setting of settings) {
    const attribute = setting.flag
      .replace(/^--/, '')
      .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const value = opts[attribute];
    if (typeof value === 'string' || typeof value === 'boolean') flags[setting.key] = value;
  }
  return flags;
}

/** The default as docs and help show it: its label, its value, or `unset`. */
export function describeDefault(setting: {
  fallback: unknown;
  defaultLabel?: string;
}): { label: string } | { value: string } {
  if (setting.defaultLabel !== undefined) return { label: setting.defaultLabel };
  const fallback = setting.fallback;
  if (
    typeof fallback === 'string' ||
    typeof fallback === 'number' ||
    typeof fallback === 'boolean'
  ) {
    return { value: String(fallback) };
  }
  return { label: 'unset' };
}

/** One option per setting, its help naming the environment variable and the default. */
export function addSettingOptions<C>(command: Command, settings: readonly SettingOf<C>[]): void {
  for (const setting of settings) {
    const placeholder =
      setting.kind === 'boolean' ? '' : ` <${setting.kind === 'string' ? 'value' : 'n'}>`;
    const shown = describeDefault(setting);
    command.addOption(
      new Option(
        `${setting.flag}${placeholder}`,
        `${setting.description} [${setting.env}, default ${'label' in shown ? shown.label : shown.value}]`,
      ),
    );
  }
}

/**
 * The settings a worker and a coordinator share: where to listen, who may call, and what the
 * faces they both serve (the API, MCP) need.
 */
export interface ListenConfig {
  host: string;
  port: number;
  apiKey: string | undefined;
  allowInsecureBind: boolean;
  logLevel: string;
  /** Comma-separated `Host` names accepted besides loopback and this server's own; `*`: any. */
  allowedHosts: string | undefined;
  /** Comma-separated web origins whose pages may call this server; `*`: any. */
  allowedOrigins: string | undefined;
  /** Preview URLs are `http://{port}-{session id}.{previewDomain}[:port]/`. */
  previewDomain: string;
  /** An MCP-over-HTTP session idle this long is ended, with the sandbox it created. */
  mcpIdleTimeoutSeconds: number;
}

export function listenSettings<C extends ListenConfig>(defaultPort: number): SettingOf<C>[] {
  const shared: SettingOf<ListenConfig>[] = [
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
      fallback: defaultPort,
      description: 'TCP port to listen on.',
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
      key: 'allowInsecureBind',
      env: 'SANDPOOL_ALLOW_INSECURE_BIND',
      flag: '--allow-insecure-bind',
      kind: 'boolean',
      fallback: false,
      description: 'Allow listening on a non-loopback address without an API key.',
    },
    {
      key: 'logLevel',
      env: 'SANDPOOL_LOG_LEVEL',
      flag: '--log-level',
      kind: 'string',
      fallback: 'info',
      description: 'pino log level (trace, debug, info, warn, error, silent).',
    },
    {
      key: 'allowedHosts',
      env: 'SANDPOOL_ALLOWED_HOSTS',
      flag: '--allowed-hosts',
      kind: 'string',
      fallback: undefined,
      defaultLabel: 'loopback names and this server’s listen and advertise names',
      description:
        'More names the `Host` header may carry, comma-separated (`sandbox.example.com`, `.example.com` for its subdomains too); `*` accepts any. Other names get 403 forbidden_origin (DNS rebinding).',
    },
    {
      key: 'allowedOrigins',
      env: 'SANDPOOL_ALLOWED_ORIGINS',
      flag: '--allowed-origins',
      kind: 'string',
      fallback: undefined,
      defaultLabel: 'none (same origin only)',
      description:
        'Web origins whose pages may call this server, comma-separated (`https://app.example.com`); `*` accepts any. A request with another `Origin` gets 403 forbidden_origin.',
    },
    {
      key: 'previewDomain',
      env: 'SANDPOOL_PREVIEW_DOMAIN',
      flag: '--preview-domain',
      kind: 'string',
      fallback: 'localhost',
      description:
        'Domain of preview URLs, `{port}-{session id}.{domain}`: browsers resolve `*.localhost` to loopback; elsewhere point a wildcard DNS name at the server.',
    },
    {
      key: 'mcpIdleTimeoutSeconds',
      env: 'SANDPOOL_MCP_IDLE_TIMEOUT_SECONDS',
      flag: '--mcp-idle-timeout-seconds',
      kind: 'int',
      fallback: 300,
      description:
        'An MCP session at /mcp unused this long is ended with its sandbox (sooner when its client hangs up).',
    },
  ];
  // The shared keys exist in every C that extends ListenConfig, with the same types.
  return shared as unknown as SettingOf<C>[];
}

/** What is wrong with the settings every listener shares (none: an empty list). */
export function listenProblems(c: ListenConfig): string[] {
  const problems: string[] = [];
  if (c.port > 65535) problems.push(`--port ${c.port} is not a TCP port`);
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(c.previewDomain)) {
    problems.push(`--preview-domain "${c.previewDomain}" must be a DNS name such as localhost`);
  }
  const key = apiKeyProblem('--api-key', c.apiKey);
  if (key) problems.push(key);
  for (const origin of settingList(c.allowedOrigins)) {
    if (origin !== '*' && !isOrigin(origin)) {
      problems.push(
        `--allowed-origins: "${origin}" is not an origin (scheme://host[:port], such as https://app.example.com)`,
      );
    }
  }
  for (const name of settingList(c.allowedHosts)) {
    if (!/^(\*|\.?[a-z0-9_.:[\]-]+)$/i.test(name)) {
      problems.push(`--allowed-hosts: "${name}" is not a host name (nor .domain or *)`);
    }
  }
  if (c.mcpIdleTimeoutSeconds < 1) problems.push('--mcp-idle-timeout-seconds must be at least 1');
  return problems;
}

/** A comma-separated setting as a list, blanks dropped. */
export function settingList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return url.origin !== 'null' && url.origin === value.replace(/\/$/, '').toLowerCase();
  } catch {
    return false;
  }
}

/** Keys short enough to guess are refused. */
export function apiKeyProblem(flag: string, key: string | undefined): string | undefined {
  return key !== undefined && key.length < 16
    ? `${flag} must be at least 16 characters`
    : undefined;
}

export function redisUrlProblem(url: string | undefined): string | undefined {
  return url !== undefined && !/^rediss?:\/\//.test(url)
    ? `--redis "${url}" must be a redis:// or rediss:// URL`
    : undefined;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** No open port without a key, unless the operator says the network is trusted. */
export function checkBind(c: ListenConfig): void {
  if (!isLoopbackHost(c.host) && c.apiKey === undefined && !c.allowInsecureBind) {
    throw new SandpoolError(
      'invalid_request',
      `Refusing to listen on ${c.host} without an API key: set SANDPOOL_API_KEY (or pass --allow-insecure-bind if the network is trusted).`,
    );
  }
}

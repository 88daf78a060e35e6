import { hostname, networkInterfaces } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { settingList } from '../config/settings-table.js';
import { SandpoolError } from '../errors/sandpool-error.js';

/** What the guard is told about the server it protects. */
export interface HostOriginSettings {
  /** The listen address (`127.0.0.1`, `0.0.0.0`, a name). */
  host: string;
  /** The URL coordinators reach a worker at; its host name is accepted. */
  advertiseUrl?: string | undefined;
  /** `--allowed-hosts`: more names, `.domain` for a domain and its subdomains, `*` for any. */
  allowedHosts?: string | undefined;
  /** `--allowed-origins`: web origins whose pages may call, `*` for any. */
  allowedOrigins?: string | undefined;
}

/** Decides whether a host name (lower case, IPv6 in brackets, no port) is one this server serves. */
export type HostRule = (hostname: string) => boolean;

const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::', '[::]']);
/** Origins that are this machine whatever the port's name: same port, same server. */
const LOOPBACK_ORIGIN_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Loopback names a browser never sends to another machine, so no page can rebind them. */
export function isLoopbackName(name: string): boolean {
  return (
    name === 'localhost' ||
    name.endsWith('.localhost') ||
    name === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
  );
}

/**
 * `Host` header → lower-case host name and port ('' when none or the default), or undefined when
 * it is no host at all.
 */
export function parseHostHeader(
  header: string | undefined,
): { hostname: string; port: string } | undefined {
  if (header === undefined || header === '' || /[\s/?#@\\]/.test(header)) return undefined;
  try {
    const url = new URL(`http://${header}`);
    // An explicit default port (`:80`) is dropped by the parser, as it is from an Origin.
    return { hostname: url.hostname.replace(/\.$/, ''), port: url.port };
  } catch {
    return undefined;
  }
}

/**
 * The browser boundary of a server nobody may reach from a web page it did not serve: the `Host`
 * must be a name of this server (DNS rebinding sends the attacker's name) and the `Origin`, when
 * a browser sends one, this server's own or one the operator allowed (CSRF). Programs send no
 * `Origin` and a correct `Host`, so they never notice.
 *
 * One mechanism for every face: later faces (preview hosts, a console) add their own names with
 * {@link addHostRule} instead of a check of their own.
 */
export class HostOriginGuard {
  private readonly rules: HostRule[] = [isLoopbackName];
  private readonly anyHost: boolean;
  private readonly anyOrigin: boolean;
  private readonly origins: Set<string>;

  constructor(settings: HostOriginSettings) {
    const allowedHosts = settingList(settings.allowedHosts).map((h) => h.toLowerCase());
    this.anyHost = allowedHosts.includes('*');
    const names = new Set<string>();
    const suffixes: string[] = [];
    for (const entry of allowedHosts) {
      if (entry.startsWith('.')) suffixes.push(entry);
      else if (entry.startsWith('*.')) suffixes.push(entry.slice(1));
      else names.add(bracketed(entry));
    }
    for (const name of ownNames(settings)) names.add(name);
    this.rules.push(
      (name) => names.has(name) || suffixes.some((s) => name.endsWith(s) || `.${name}` === s),
    );

    const allowedOrigins = settingList(settings.allowedOrigins);
    this.anyOrigin = allowedOrigins.includes('*');
    this.origins = new Set(allowedOrigins.map((o) => o.replace(/\/$/, '').toLowerCase()));
  }

  /** Accepts more host names (a face that serves its own names, such as preview URLs). */
  addHostRule(rule: HostRule): void {
    this.rules.push(rule);
  }

  /** Whether `name` (lower case, no port) is a host name this server answers to. */
  acceptsHost(name: string): boolean {
    return this.anyHost || this.rules.some((rule) => rule(name));
  }

  /** The refusal for a request with these headers, or undefined when it may go on. */
  check(
    hostHeader: string | undefined,
    originHeader: string | undefined,
  ): SandpoolError | undefined {
    const host = parseHostHeader(hostHeader);
    if (!this.anyHost && (host === undefined || !this.acceptsHost(host.hostname))) {
      return new SandpoolError(
        'forbidden_origin',
        `Forbidden: the Host header "${hostHeader ?? ''}" is not a name of this server (a web page may be rebinding a name to it). Call it as localhost or 127.0.0.1, or add the name to --allowed-hosts / SANDPOOL_ALLOWED_HOSTS ("*" accepts any).`,
      );
    }
    if (originHeader === undefined || this.anyOrigin) return undefined;
    if (this.acceptsOrigin(originHeader, host)) return undefined;
    return new SandpoolError(
      'forbidden_origin',
      `Forbidden: a web page from ${originHeader} may not call this server. If that page should, add its origin to --allowed-origins / SANDPOOL_ALLOWED_ORIGINS ("*" accepts any).`,
    );
  }

  private acceptsOrigin(
    header: string,
    host: { hostname: string; port: string } | undefined,
  ): boolean {
    const normalized = header.replace(/\/$/, '').toLowerCase();
    if (this.origins.has(normalized)) return true;
    let origin: URL;
    try {
      origin = new URL(normalized);
    } catch {
      return false; // `null` (a sandboxed frame, a file) and garbage alike.
    }
    if (host === undefined || (origin.protocol !== 'http:' && origin.protocol !== 'https:')) {
      return false;
    }
    // Same port: both name none (the scheme's default, as behind a TLS proxy) or the same one.
    if (origin.port !== host.port) return false;
    // The page came from this very server (its API document, later its console), under the
    // name the request uses or under another loopback name for the same port.
    return (
      origin.hostname === host.hostname ||
      (LOOPBACK_ORIGIN_HOSTS.has(origin.hostname) && LOOPBACK_ORIGIN_HOSTS.has(host.hostname))
    );
  }
}

/** Refuses, on every route (404s and /health too), what the guard refuses, before auth runs. */
export function installHostOriginGuard(app: FastifyInstance, guard: HostOriginGuard): void {
  app.addHook('onRequest', async (request) => {
    const refusal = guard.check(request.headers.host, request.headers.origin);
    if (refusal !== undefined) {
      request.log.info(
        { host: request.headers.host, origin: request.headers.origin },
        refusal.message,
      );
      throw refusal;
    }
  });
}

/** The names this server is reached by: its listen name, its advertise name, its addresses. */
function ownNames(settings: HostOriginSettings): string[] {
  const names: string[] = [];
  const listen = bracketed(settings.host.toLowerCase());
  if (WILDCARD_ADDRESSES.has(listen)) {
    // Listening everywhere: every address of this machine, and its name, reach it.
    names.push(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces())) {
      for (const address of list ?? []) names.push(bracketed(address.address.toLowerCase()));
    }
  } else {
    names.push(listen);
  }
  if (settings.advertiseUrl !== undefined) {
    try {
      names.push(new URL(settings.advertiseUrl).hostname.toLowerCase());
    } catch {
      // Validated with the rest of the configuration.
    }
  }
  return names;
}

/** IPv6 literals as the URL parser writes host names: in brackets. */
function bracketed(name: string): string {
  return name.includes(':') && !name.startsWith('[') ? `[${name}]` : name;
}

import { lookup } from 'node:dns/promises';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { connect, isIP, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream';
import { BandwidthLimiter } from './bandwidth-limiter.js';
import type { CredentialRules } from './credential-rules.js';
import type { EgressAudit, EgressAuditEntry } from './egress-audit.js';
import type { EgressDecision, EgressPolicy } from './egress-policy.js';
import type { SpecialRanges } from './special-ranges.js';
import type { WorkerCa } from './worker-ca.js';

/** Resolves a name with the worker host's resolver (`/etc/hosts` applies); injectable for tests. */
export type EgressResolver = (host: string) => Promise<{ address: string; family: number }[]>;

export const hostResolver: EgressResolver = (host) => lookup(host, { all: true });

export interface EgressLimits {
  /** Upstream connections (tunnels and plain requests) one session may hold at once. */
  maxConnections: number;
  /** Bytes per second each way for the whole session; 0 = unlimited. */
  bytesPerSecond: number;
  /** How long an upstream connect may take. */
  connectTimeoutMs: number;
}

export interface EgressProxyOptions {
  sessionId: string;
  /** The address to listen on (the gateway of the session's network) and port (0 = any). */
  host: string;
  port: number;
  /** When set, connections from any other peer are dropped (another sandbox, the host). */
  peerAddress?: () => string | undefined;
  /** Read on every request, so a policy change applies to the next connection. */
  policy: () => EgressPolicy;
  resolver: EgressResolver;
  special: SpecialRanges;
  audit: EgressAudit;
  limits: EgressLimits;
  credentials: CredentialRules;
  /** Needed only when credential rules exist: presents certificates for intercepted hosts. */
  ca?: WorkerCa;
  /** Extra CA certificates (PEM) trusted for upstream TLS of intercepted hosts. */
  upstreamCa?: string[];
}

interface Target {
  host: string;
  port: number;
}

/** Why a request was refused, as the sandbox's program sees it (status line and body). */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly decision: EgressDecision | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One session's egress proxy: an HTTP forward proxy (CONNECT tunnels and absolute-form plain
 * HTTP) listening only on the session's own network. It checks the requested name against the
 * policy, resolves the name itself, checks the address, and connects to that address, so a
 * forged SNI or Host header cannot steer it elsewhere. Tunnels are opaque except for
 * destinations with a header rule, where it terminates TLS with the worker's CA to add them.
 */
export class EgressProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Duplex>();
  private readonly up: BandwidthLimiter;
  private readonly down: BandwidthLimiter;
  private active = 0;
  private closed = false;

  constructor(private readonly options: EgressProxyOptions) {
    this.up = new BandwidthLimiter(options.limits.bytesPerSecond);
    this.down = new BandwidthLimiter(options.limits.bytesPerSecond);
    this.server = createServer((req, res) => void this.onRequest(req, res));
    this.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.onConnect(req, socket, head);
    });
    this.server.on('connection', (socket: Socket) => {
      const peer = options.peerAddress?.();
      if (peer !== undefined && socket.remoteAddress?.replace(/^::ffff:/, '') !== peer) {
        socket.destroy();
        return;
      }
      socket.setNoDelay(true); // TLS handshakes are small writes: no Nagle delay.
      this.track(socket);
    });
    this.server.on('clientError', (_error, socket: Duplex) => socket.destroy());
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  /** Stops listening and cuts every connection; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: Duplex): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private entry(method: string, target: Target, started: number): EgressAuditEntry {
    return {
      time: new Date().toISOString(),
      session_id: this.options.sessionId,
      method,
      host: target.host,
      port: target.port,
      decision: 'denied',
      intercepted: false,
      bytes_out: 0,
      bytes_in: 0,
      duration_ms: Math.round(performance.now() - started),
    };
  }

  private finish(entry: EgressAuditEntry, started: number): void {
    entry.duration_ms = Math.round(performance.now() - started);
    this.options.audit.record(entry);
  }

  /** Policy on the name, then resolution and policy on each address; the address to use. */
  private async admit(target: Target, entry: EgressAuditEntry): Promise<string> {
    const policy = this.options.policy();
    const byName = policy.decideHost(target.host, target.port);
    if (!byName.allowed) {
      throw new Refusal(403, byName, this.explain(target, byName));
    }
    entry.rule = byName.rule;
    if (this.active >= this.options.limits.maxConnections) {
      throw new Refusal(
        429,
        undefined,
        `this session already holds ${this.options.limits.maxConnections} connections; close some and retry`,
      );
    }
    const literal = target.host.replace(/^\[(.*)\]$/, '$1');
    let addresses: { address: string }[];
    if (isIP(literal) !== 0) {
      addresses = [{ address: literal }];
    } else {
      try {
        addresses = await this.options.resolver(target.host);
      } catch (error) {
        throw new Refusal(
          502,
          undefined,
          `${target.host} did not resolve on the worker (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        );
      }
    }
    let refused: EgressDecision | undefined;
    for (const { address } of addresses) {
      const byAddress = policy.decideAddress(address, target.port, this.options.special);
      if (byAddress.allowed) {
        entry.address = address;
        if (byAddress.rule !== 'public address') entry.rule = byAddress.rule;
        return address;
      }
      refused ??= byAddress;
      entry.address = address;
    }
    throw new Refusal(
      403,
      refused,
      refused
        ? this.explain(target, refused)
        : `${target.host} resolved to no address on the worker`,
    );
  }

  private explain(target: Target, decision: EgressDecision): string {
    if (decision.allowed) return 'allowed';
    const where = `${target.host}:${target.port}`;
    switch (decision.reason) {
      case 'denied_by_rule':
        return `${where} is denied by the session's network rule "${decision.rule ?? ''}"`;
      case 'not_allowed':
        return `${where} is not in the session's allow_out list; ask for it with PUT /v1/sessions/{id}/network`;
      case 'special_address':
        return `${where} resolves to a private, loopback, link-local or metadata address, which only an address rule can open`;
      case 'invalid_host':
        return `"${target.host}" is not a valid host name or port`;
    }
  }

  private refuse(entry: EgressAuditEntry, error: unknown): { status: number; message: string } {
    if (error instanceof Refusal) {
      if (error.decision && !error.decision.allowed) {
        entry.reason = error.decision.reason;
        if (error.decision.rule !== undefined) entry.rule = error.decision.rule;
      } else {
        entry.reason = error.status === 429 ? 'connection_limit' : 'unresolved';
      }
      entry.error = error.message;
      return { status: error.status, message: error.message };
    }
    const message = error instanceof Error ? error.message : String(error);
    entry.reason = 'upstream_error';
    entry.error = message;
    return { status: 502, message };
  }

  private async onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const started = performance.now();
    const target = parseAuthority(req.url ?? '');
    const entry = this.entry('CONNECT', target ?? { host: req.url ?? '', port: 0 }, started);
    socket.on('error', () => undefined);
    if (target === undefined) {
      entry.reason = 'invalid_host';
      this.finish(entry, started);
      return writeStatus(socket, 400, 'CONNECT needs host:port');
    }
    let address: string;
    try {
      address = await this.admit(target, entry);
    } catch (error) {
      const { status, message } = this.refuse(entry, error);
      this.finish(entry, started);
      return writeStatus(socket, status, message);
    }
    const headers = this.options.credentials.headersFor(target.host, target.port);
    if (headers !== undefined && this.options.ca !== undefined) {
      entry.decision = 'allowed';
      entry.intercepted = true;
      return this.intercept(socket, head, target, address, headers, entry, started).catch(
        (error: unknown) => {
          entry.decision = 'denied';
          entry.reason = 'interception_failed';
          entry.error = (error as Error).message;
          this.finish(entry, started);
          socket.destroy();
        },
      );
    }
    this.active++;
    const upstream = connect({ host: address, port: target.port, noDelay: true });
    this.track(upstream);
    const timer = setTimeout(
      () => upstream.destroy(new Error(`connecting to ${address}:${target.port} timed out`)),
      this.options.limits.connectTimeoutMs,
    );
    let connected = false;
    upstream.once('connect', () => {
      clearTimeout(timer);
      connected = true;
      entry.decision = 'allowed';
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      if (this.options.limits.bytesPerSecond > 0) {
        pipeline(
          socket,
          this.up.throttle(() => undefined),
          upstream,
          () => undefined,
        );
        pipeline(
          upstream,
          this.down.throttle(() => undefined),
          socket,
          () => undefined,
        );
      } else {
        // Unlimited: no stream in between, so the proxy costs little more than a copy.
        pipeline(socket, upstream, () => undefined);
        pipeline(upstream, socket, () => undefined);
      }
    });
    upstream.once('close', () => {
      clearTimeout(timer);
      this.active--;
      entry.bytes_out = upstream.bytesWritten;
      entry.bytes_in = upstream.bytesRead;
      socket.destroy();
      this.finish(entry, started);
    });
    upstream.once('error', (error) => {
      if (!connected) {
        entry.decision = 'denied';
        entry.reason = 'upstream_error';
        entry.error = error.message;
        writeStatus(
          socket,
          502,
          `could not connect to ${target.host}:${target.port}: ${error.message}`,
        );
      }
    });
  }

  /** Plain HTTP through the proxy (`GET http://host/path`): forwarded to the resolved address. */
  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    let url: URL | undefined;
    try {
      url = req.url?.startsWith('http://') ? new URL(req.url) : undefined;
    } catch {
      url = undefined;
    }
    if (url === undefined) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('sandpool egress proxy: send absolute http:// URLs or CONNECT host:port\n');
      return;
    }
    const target = { host: url.hostname, port: Number(url.port || 80) };
    const entry = this.entry(req.method ?? 'GET', target, started);
    let address: string;
    try {
      address = await this.admit(target, entry);
    } catch (error) {
      const { status, message } = this.refuse(entry, error);
      this.finish(entry, started);
      res.writeHead(status, { 'content-type': 'text/plain', 'x-sandpool-egress': 'denied' });
      res.end(`sandpool egress: ${message}\n`);
      return;
    }
    const extra = this.options.credentials.headersFor(target.host, target.port);
    if (extra !== undefined) entry.intercepted = true;
    this.forward(req, res, { target, address, tls: false, extra }, entry, started);
  }

  /** Terminates the sandbox's TLS with a certificate for the host, to add the rule's headers. */
  private async intercept(
    socket: Duplex,
    head: Buffer,
    target: Target,
    address: string,
    extra: Record<string, string>,
    entry: EgressAuditEntry,
    started: number,
  ): Promise<void> {
    const ca = this.options.ca;
    if (ca === undefined) return;
    const secureContext = await ca.contextFor(target.host);
    // One small HTTPS server per intercepted tunnel: it terminates TLS with a certificate for
    // the name the policy checked (whatever SNI the sandbox sent) and parses the requests.
    const inner = createHttpsServer(
      { SNICallback: (_name, done) => done(null, secureContext), ALPNProtocols: ['http/1.1'] },
      (req, res) => {
        const requestEntry = {
          ...entry,
          method: req.method ?? 'GET',
          time: new Date().toISOString(),
        };
        this.forward(
          req,
          res,
          { target, address, tls: true, extra },
          requestEntry,
          performance.now(),
        );
      },
    );
    inner.on('tlsClientError', (_e, s: Duplex) => s.destroy());
    inner.on('clientError', (_e, s: Duplex) => s.destroy());
    socket.once('close', () => {
      inner.close();
      this.finish({ ...entry, method: 'CONNECT' }, started);
    });
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    inner.emit('connection', socket);
  }

  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    to: { target: Target; address: string; tls: boolean; extra?: Record<string, string> },
    entry: EgressAuditEntry,
    started: number,
  ): void {
    const { target, address } = to;
    this.active++;
    const headers: OutgoingHttpHeaders = { ...req.headers };
    for (const h of ['proxy-connection', 'proxy-authorization', 'connection', 'keep-alive']) {
      delete headers[h];
    }
    // The Host header names what the proxy checked, whatever the sandbox wrote.
    headers.host =
      target.port === (to.tls ? 443 : 80) ? target.host : `${target.host}:${target.port}`;
    Object.assign(headers, to.extra ?? {});
    const url = new URL(req.url ?? '/', 'http://placeholder');
    const options = {
      host: address,
      port: target.port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers,
      // A connection of its own: nothing pooled outlives the request or is shared by sessions.
      agent: false,
      timeout: this.options.limits.connectTimeoutMs,
      ...(to.tls
        ? {
            servername: isIP(target.host) === 0 ? target.host : undefined,
            // The upstream certificate is verified against the name the policy allowed.
            ca: this.options.upstreamCa,
          }
        : {}),
    };
    const send = to.tls ? httpsRequest : httpRequest;
    const upstream = send(options, (upRes) => {
      entry.decision = 'allowed';
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      pipeline(
        upRes,
        this.down.throttle((n) => (entry.bytes_in += n)),
        res,
        () => undefined,
      );
    });
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      this.active--;
      this.finish(entry, started);
    };
    upstream.once('close', end);
    upstream.once('timeout', () => upstream.destroy(new Error('upstream timed out')));
    upstream.once('error', (error) => {
      entry.reason = 'upstream_error';
      entry.error = error.message;
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain', 'x-sandpool-egress': 'upstream-error' });
        res.end(`sandpool egress: ${target.host}:${target.port}: ${error.message}\n`);
      } else {
        res.destroy();
      }
    });
    pipeline(
      req,
      this.up.throttle((n) => (entry.bytes_out += n)),
      upstream,
      () => undefined,
    );
  }
}

/** `host:port` of a CONNECT line (`[v6]:port` too); `undefined` when malformed. */
export function parseAuthority(authority: string): Target | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(authority);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1].replace(/^\[(.*)\]$/, '$1').toLowerCase(), port };
}

function writeStatus(socket: Duplex, status: number, message: string): void {
  const reason = {
    400: 'Bad Request',
    403: 'Forbidden',
    429: 'Too Many Requests',
    502: 'Bad Gateway',
  }[status];
  const body = `sandpool egress: ${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason ?? 'Error'}\r\ncontent-type: text/plain\r\nx-sandpool-egress: denied\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

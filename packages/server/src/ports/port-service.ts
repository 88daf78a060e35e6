import type { Duplex } from 'node:stream';
import { Counter, Gauge, type Registry } from 'prom-client';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { Clock } from '../sessions/clock.js';
import type { Session, SessionManager } from '../sessions/session-manager.js';
import {
  checkPreviewSignature,
  MAX_SIGNED_URL_SECONDS,
  previewUnauthorized,
  sameSecret,
  signPreview,
  type PreviewCredentials,
} from './preview-access.js';

export interface PortLimits {
  /** Tunnels (connections to ports in the sandbox) one session may have open at once. */
  maxTunnelsPerSession: number;
  /** Tunnels of all sessions of the worker together (each may buffer a window of 256 KiB). */
  maxTunnelsPerWorker: number;
}

export const DEFAULT_PORT_LIMITS: PortLimits = {
  maxTunnelsPerSession: 64,
  maxTunnelsPerWorker: 512,
};

export interface PortServiceOptions {
  sessions: SessionManager;
  clock: Clock;
  registry?: Registry;
  limits?: Partial<PortLimits>;
}

/** How a preview request was let in. */
export type PreviewAccess = 'public' | 'token' | 'cookie' | 'signed-url';

/**
 * Preview URLs of sessions: connections to servers listening inside a sandbox (carried by its
 * agent, so the sandbox needs no network), who may use them (private by default: the session's
 * access token, a signed URL, or a port marked public), and what they cost (bounded tunnels).
 */
export class PortService {
  private readonly limits: PortLimits;
  /** Public ports per session; the entry goes with the session object. */
  private readonly publicPorts = new WeakMap<Session, Set<number>>();
  private readonly perSession = new Map<string, number>();
  private total = 0;
  private readonly tunnelsOpen: Gauge | undefined;
  private readonly bytes: Counter<'direction'> | undefined;

  constructor(private readonly options: PortServiceOptions) {
    this.limits = { ...DEFAULT_PORT_LIMITS, ...options.limits };
    if (options.registry !== undefined) {
      this.tunnelsOpen = new Gauge({
        name: 'sandpool_tunnels_open',
        help: 'Connections to ports inside sandboxes (preview URLs) open now',
        registers: [options.registry],
      });
      this.bytes = new Counter({
        name: 'sandpool_tunnel_bytes_total',
        help: 'Bytes relayed through preview tunnels; direction "in" is from the sandbox',
        labelNames: ['direction'],
        registers: [options.registry],
      });
    }
  }

  /** Tunnels open on this worker now. */
  get openTunnels(): number {
    return this.total;
  }

  /** A connection to `port` inside the session's sandbox; it counts until it closes. */
  async connect(sessionId: string, port: number): Promise<Duplex> {
    const session = this.options.sessions.get(sessionId);
    const tunnels = session.sandbox.tunnels;
    if (tunnels === undefined) {
      throw new SandpoolError(
        'invalid_request',
        'This session’s sandbox has no sandpool agent, so its ports cannot be reached; use a template built on the sandpool foundation image.',
      );
    }
    const mine = this.perSession.get(sessionId) ?? 0;
    if (mine >= this.limits.maxTunnelsPerSession) {
      throw new SandpoolError(
        'capacity_exhausted',
        `Session ${sessionId} has ${mine} preview connections open, its limit; close some (long polls, WebSockets) and retry.`,
        1,
      );
    }
    if (this.total >= this.limits.maxTunnelsPerWorker) {
      throw new SandpoolError(
        'capacity_exhausted',
        `This worker has ${this.total} preview connections open, its limit; retry in a moment.`,
        1,
      );
    }
    this.count(sessionId, 1);
    let stream: Duplex;
    try {
      stream = await tunnels.open(port, (direction, n) => this.bytes?.inc({ direction }, n));
    } catch (error) {
      this.count(sessionId, -1);
      throw error;
    }
    stream.once('close', () => this.count(sessionId, -1));
    return stream;
  }

  /** Marks a port public (no credentials needed) or private again. */
  setPublic(sessionId: string, port: number, isPublic: boolean): { port: number; public: boolean } {
    const session = this.options.sessions.get(sessionId);
    let ports = this.publicPorts.get(session);
    if (isPublic) {
      if (ports === undefined) this.publicPorts.set(session, (ports = new Set()));
      ports.add(port);
    } else ports?.delete(port);
    return { port, public: isPublic };
  }

  isPublic(sessionId: string, port: number): boolean {
    const session = this.options.sessions.get(sessionId);
    return this.publicPorts.get(session)?.has(port) ?? false;
  }

  /** A signature for a signed URL of the port, valid for `ttlSeconds`. */
  sign(
    sessionId: string,
    port: number,
    ttlSeconds: number,
  ): { token: string; expiresAt: string; ttlSeconds: number } {
    const session = this.options.sessions.get(sessionId);
    const ttl = Math.min(Math.max(1, Math.floor(ttlSeconds)), MAX_SIGNED_URL_SECONDS);
    const expires = Math.floor(this.options.clock.now() / 1000) + ttl;
    return {
      token: signPreview(session.accessToken, sessionId, port, expires),
      expiresAt: new Date(expires * 1000).toISOString(),
      ttlSeconds: ttl,
    };
  }

  /**
   * How a preview request may go on, or the refusal (401) when the port is private and nothing
   * it carries proves access. An unknown session answers 404 as everywhere else.
   */
  authorize(sessionId: string, port: number, credentials: PreviewCredentials): PreviewAccess {
    const session = this.options.sessions.get(sessionId);
    const now = this.options.clock.now();
    if (credentials.header !== undefined && sameSecret(credentials.header, session.accessToken)) {
      return 'token';
    }
    if (
      credentials.query !== undefined &&
      checkPreviewSignature(credentials.query, session.accessToken, sessionId, port, now)
    ) {
      return 'signed-url';
    }
    if (
      credentials.cookie !== undefined &&
      checkPreviewSignature(credentials.cookie, session.accessToken, sessionId, port, now)
    ) {
      return 'cookie';
    }
    if (this.publicPorts.get(session)?.has(port)) return 'public';
    throw previewUnauthorized(port);
  }

  private count(sessionId: string, delta: number): void {
    this.total += delta;
    const left = (this.perSession.get(sessionId) ?? 0) + delta;
    if (left <= 0) this.perSession.delete(sessionId);
    else this.perSession.set(sessionId, left);
    this.tunnelsOpen?.set(this.total);
  }
}

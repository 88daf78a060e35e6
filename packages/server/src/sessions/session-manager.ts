import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import type { SandboxPool } from '../pool/sandbox-pool.js';
import type { Sandbox, SandboxRuntime } from '../runtime/sandbox-runtime.js';
import type { Clock } from './clock.js';
import type { NetworkPolicyInput } from '../network/egress-policy.js';
import type { EgressService } from '../network/egress-service.js';

export type SessionState = 'active' | 'lost' | 'closing';

export interface Session {
  readonly id: string;
  readonly sandbox: Sandbox;
  readonly createdAt: number;
  expiresAt: number;
  readonly env: Record<string, string>;
  readonly metadata: Record<string, string>;
  state: SessionState;
  /** The egress policy of a session with network (changed by PUT .../network). */
  network?: NetworkPolicyInput;
}

/** What the API shows of a session. */
export interface SessionView {
  session_id: string;
  worker_id: string;
  created_at: string;
  expires_at: string;
  metadata: Record<string, string>;
}

export interface CreateSessionInput {
  ttlSeconds?: number;
  env?: Record<string, string>;
  metadata?: Record<string, string>;
  /** Egress allow-list; without it (and without a template default) the session has no network. */
  network?: NetworkPolicyInput;
  /** Names the template, whose default egress list applies when `network` is absent. */
  template?: string;
}

export interface SessionManagerOptions {
  workerId: string;
  runtime: SandboxRuntime;
  pool: SandboxPool;
  /** Labels every container of this worker carries; used to find dead session containers. */
  workerLabels: Record<string, string>;
  maxSessions: number;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  reapIntervalMs: number;
  clock: Clock;
  log: Logger;
  metrics: WorkerMetrics;
  /** Distributed mode: keeps what a restarted worker needs to re-adopt its sessions. */
  journal?: SessionJournal;
  /** Why new sessions are refused right now (engine down, heartbeat lost), if they are. */
  refuseNew?: () => SandpoolError | undefined;
  /** Egress by domain; without it, a session that asks for network is refused. */
  egress?: EgressService;
}

/** Where sessions are recorded so a worker restarted with the same id can take them back. */
export interface SessionJournal {
  record(session: Session): void;
  forget(sessionId: string): void;
}

/** A session found alive after a restart, with a handle on its container. */
export interface AdoptedSession {
  id: string;
  sandbox: Sandbox;
  createdAt: number;
  expiresAt: number;
  env: Record<string, string>;
  metadata: Record<string, string>;
  network?: NetworkPolicyInput;
}

/** How long a lost session still answers 410 instead of 404, so clients learn what happened. */
const LOST_TOMBSTONE_MS = 10 * 60 * 1000;

/** Owns this worker's sessions: creation from the pool, expiry, loss detection and teardown. */
export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly lost = new Map<string, { reason: string; until: number }>();
  private creating = 0;
  private reapTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: SessionManagerOptions) {}

  get activeCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.state === 'active') n++;
    return n;
  }

  start(): void {
    this.reapTimer = setInterval(() => void this.reap(), this.options.reapIntervalMs);
    this.reapTimer.unref();
  }

  async create(input: CreateSessionInput): Promise<Session> {
    const { options } = this;
    if (this.closed)
      throw new SandpoolError(
        'capacity_exhausted',
        'This worker is shutting down; retry on another.',
        5,
      );
    const policy = options.egress?.policyFor(input.network, input.template);
    if (input.network !== undefined && options.egress === undefined) {
      throw new SandpoolError(
        'egress_not_permitted',
        'This worker cannot give sessions network (its runtime has no egress support).',
      );
    }
    const refusal = options.refuseNew?.();
    if (refusal !== undefined) throw refusal;
    if (this.sessions.size + this.creating >= options.maxSessions) {
      options.metrics.capacityRejections.inc();
      throw new SandpoolError(
        'capacity_exhausted',
        `This worker holds its limit of ${options.maxSessions} sessions; close one or retry later.`,
        2,
      );
    }
    const ttlSeconds = this.checkTtl(input.ttlSeconds ?? options.defaultTtlSeconds);
    const stop = options.metrics.sessionCreateSeconds.startTimer();
    this.creating++;
    const id = newSessionId();
    let sandbox: Sandbox;
    try {
      // A sandbox with network cannot come from the pool (NetworkMode none is final): it is
      // started on its own network, behind its own proxy.
      ({ sandbox } =
        policy !== undefined && options.egress !== undefined
          ? {
              sandbox: await options.egress.createSandbox(id, policy, {
                ...options.workerLabels,
                'sandpool.session': id,
              }),
            }
          : await options.pool.claim({ 'sandpool.session': id }));
    } finally {
      this.creating--;
    }
    if (this.closed) {
      await sandbox.destroy().catch(() => undefined);
      if (policy) await options.egress?.release(id);
      throw new SandpoolError(
        'capacity_exhausted',
        'This worker is shutting down; retry on another.',
        5,
      );
    }
    const now = options.clock.now();
    const session: Session = {
      id,
      sandbox,
      createdAt: now,
      expiresAt: now + ttlSeconds * 1000,
      env: input.env ?? {},
      metadata: input.metadata ?? {},
      state: 'active',
      ...(policy ? { network: policy.toInput() } : {}),
    };
    this.sessions.set(id, session);
    options.journal?.record(session);
    options.metrics.sessionsCreated.inc();
    stop();
    options.log.info({ sessionId: id, containerId: sandbox.id }, 'session created');
    return session;
  }

  /** The live session, or `session_not_found` / `session_lost`. */
  get(id: string): Session {
    const session = this.sessions.get(id);
    if (session?.state === 'active') return session;
    const lost = this.lost.get(id);
    if (lost)
      throw new SandpoolError(
        'session_lost',
        `Session ${id} is lost: ${lost.reason}. Create a new session.`,
      );
    throw new SandpoolError(
      'session_not_found',
      `No session ${id} on this worker; it was closed, expired or never existed.`,
    );
  }

  list(): Session[] {
    return [...this.sessions.values()].filter((s) => s.state === 'active');
  }

  keepAlive(id: string, ttlSeconds: number | undefined): Session {
    const session = this.get(id);
    session.expiresAt =
      this.options.clock.now() + this.checkTtl(ttlSeconds ?? this.options.defaultTtlSeconds) * 1000;
    this.options.journal?.record(session);
    return session;
  }

  /** Replaces a running session's egress policy (the operator's bound applies). */
  setNetwork(id: string, input: NetworkPolicyInput): Session {
    const session = this.get(id);
    if (this.options.egress === undefined || session.network === undefined) {
      throw new SandpoolError(
        'invalid_request',
        'This session was created without network, and a sandbox cannot join one later; create a new session with "network".',
      );
    }
    session.network = this.options.egress.setPolicy(id, input).toInput();
    this.options.journal?.record(session);
    return session;
  }

  /** Takes back a session an earlier run of this worker created (its container still runs). */
  adopt(adopted: AdoptedSession): Session {
    const session: Session = { ...adopted, state: 'active' };
    this.sessions.set(session.id, session);
    this.options.log.info(
      { sessionId: session.id, containerId: session.sandbox.id },
      'session re-adopted',
    );
    return session;
  }

  /** Ends a session and destroys its container before resolving. */
  async delete(id: string): Promise<void> {
    const session = this.get(id);
    await this.end(session, 'deleted');
  }

  /**
   * Marks a session lost when its container turns out to be gone (an exec found it dead), so later
   * requests answer 410 at once.
   */
  async markLost(id: string, reason: string): Promise<void> {
    const session = this.sessions.get(id);
    if (!session || session.state !== 'active') return;
    session.state = 'lost';
    this.lost.set(id, { reason, until: this.options.clock.now() + LOST_TOMBSTONE_MS });
    this.sessions.delete(id);
    this.options.journal?.forget(id);
    this.options.metrics.sessionsEnded.inc({ reason: 'lost' });
    this.options.log.warn(
      { sessionId: id, containerId: session.sandbox.id, reason },
      'session lost',
    );
    await session.sandbox.destroy().catch(() => undefined);
    if (session.network) await this.options.egress?.release(id);
    this.options.pool.refill();
  }

  view(session: Session): SessionView {
    return {
      session_id: session.id,
      worker_id: this.options.workerId,
      created_at: new Date(session.createdAt).toISOString(),
      expires_at: new Date(session.expiresAt).toISOString(),
      metadata: session.metadata,
    };
  }

  /** Ends every session; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.reapTimer);
    await Promise.allSettled([...this.sessions.values()].map((s) => this.end(s, 'shutdown')));
  }

  /** Ends expired sessions and finds the ones whose container died behind the worker's back. */
  async reap(): Promise<void> {
    const now = this.options.clock.now();
    for (const [id, tomb] of this.lost) if (tomb.until <= now) this.lost.delete(id);
    const expired = [...this.sessions.values()].filter(
      (s) => s.state === 'active' && s.expiresAt <= now,
    );
    await Promise.allSettled(expired.map((s) => this.end(s, 'expired')));
    if (this.sessions.size === 0) return;
    let running: Set<string>;
    try {
      const listed = await this.options.runtime.list(this.options.workerLabels);
      running = new Set(listed.filter((c) => c.running).map((c) => c.id));
    } catch {
      return; // The engine did not answer; /health reports it.
    }
    for (const session of [...this.sessions.values()]) {
      if (session.state === 'active' && !running.has(session.sandbox.id)) {
        await this.markLost(session.id, 'its container stopped or was removed outside the worker');
      }
    }
  }

  private async end(session: Session, reason: 'deleted' | 'expired' | 'shutdown'): Promise<void> {
    if (session.state === 'closing') return;
    session.state = 'closing';
    try {
      await session.sandbox.destroy();
      if (session.network) await this.options.egress?.release(session.id);
    } finally {
      this.sessions.delete(session.id);
      this.options.journal?.forget(session.id);
      this.options.metrics.sessionsEnded.inc({ reason });
      this.options.log.info(
        { sessionId: session.id, containerId: session.sandbox.id, reason },
        'session ended',
      );
    }
  }

  private checkTtl(ttlSeconds: number): number {
    if (
      !Number.isInteger(ttlSeconds) ||
      ttlSeconds < 1 ||
      ttlSeconds > this.options.maxTtlSeconds
    ) {
      throw new SandpoolError(
        'invalid_request',
        `ttl_seconds must be a whole number from 1 to ${this.options.maxTtlSeconds}, got ${ttlSeconds}.`,
      );
    }
    return ttlSeconds;
  }
}

/** 128 random bits, URL-safe: ids cannot be guessed. */
export function newSessionId(): string {
  return `sb_${randomBytes(16).toString('hex')}`;
}

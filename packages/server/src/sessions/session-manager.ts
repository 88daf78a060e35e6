import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import type { Sandbox, SandboxRuntime } from '../runtime/sandbox-runtime.js';
import { PeriodicTask } from '../scheduling/periodic-task.js';
import { DEFAULT_TEMPLATE } from '../templates/template-spec.js';
import type { Clock } from './clock.js';
import type { EgressPolicy, NetworkPolicyInput } from '../network/egress-policy.js';
import type { EgressService } from '../network/egress-service.js';

export type SessionState = 'active' | 'lost' | 'closing';

export interface Session {
  readonly id: string;
  readonly sandbox: Sandbox;
  /** The template its sandbox was made from. */
  readonly template: string;
  readonly createdAt: number;
  expiresAt: number;
  readonly env: Record<string, string>;
  readonly metadata: Record<string, string>;
  /**
   * A secret of this session alone, for its in-sandbox APIs (E2B's envd routes, preview URLs):
   * knowing a session id is not enough to use the session.
   */
  readonly accessToken: string;
  state: SessionState;
  /** The egress policy of a session with network (changed by PUT .../network). */
  network?: NetworkPolicyInput;
}

/** What the API shows of a session. */
export interface SessionView {
  session_id: string;
  worker_id: string;
  template: string;
  created_at: string;
  expires_at: string;
  metadata: Record<string, string>;
  /** See `Session.accessToken`; shown to holders of the API key, as E2B shows its envd token. */
  access_token: string;
}

export interface CreateSessionInput {
  /** Default `base`; its default egress list applies when `network` is absent. */
  template?: string;
  ttlSeconds?: number;
  env?: Record<string, string>;
  metadata?: Record<string, string>;
  /** Egress allow-list; without it (and without a template default) the session has no network. */
  network?: NetworkPolicyInput;
}

/** Where sessions get their sandboxes: a warm pool per template (`TemplatePools`). */
export interface SandboxSource {
  /** Throws `template_not_found` unless this worker serves the template. */
  check(template: string): void;
  /**
   * A sandbox of the template: a warm one, or the next one started when its pool is empty. The
   * caller owns it from here.
   */
  claim(template: string): Promise<{ sandbox: Sandbox; fromPool: boolean }>;
  /** Tops the template's pool up (a sandbox of it went away). */
  refill(template: string): void;
  /** The runtime that starts the template's sandboxes (egress starts one outside the pool). */
  runtimeOf(template: string): SandboxRuntime;
  /** The labels the template's containers carry besides the worker's. */
  labelsOf(template: string): Record<string, string>;
}

export interface SessionManagerOptions {
  workerId: string;
  runtime: SandboxRuntime;
  pools: SandboxSource;
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

/**
 * Where sessions are recorded so coordinators can route to them and a worker restarted with the
 * same id can take them back.
 */
export interface SessionJournal {
  /**
   * Records a new session and maps its id to this worker, before the create is answered (a
   * coordinator routes the very next request by it). Resolves false when the id is taken.
   */
  claim(session: Session): Promise<boolean>;
  /** The session's expiry changed; written in the background. */
  record(session: Session): void;
  /** The session ended; written in the background. */
  forget(sessionId: string): void;
}

/** Tries at claiming a fresh id before giving up (a clash of 128-bit ids is practically never). */
const ID_CLAIM_ATTEMPTS = 3;

/** A session found alive after a restart, with a handle on its container. */
export interface AdoptedSession {
  id: string;
  sandbox: Sandbox;
  template: string;
  createdAt: number;
  expiresAt: number;
  env: Record<string, string>;
  metadata: Record<string, string>;
  /** Absent in records written before access tokens: the session gets a new one. */
  accessToken?: string;
  network?: NetworkPolicyInput;
}

/** How long a lost session still answers 410 instead of 404, so clients learn what happened. */
const LOST_TOMBSTONE_MS = 10 * 60 * 1000;

/** Owns this worker's sessions: creation from the pool, expiry, loss detection and teardown. */
export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly lost = new Map<string, { reason: string; until: number }>();
  private creating = 0;
  /** Containers handed to a create that has not registered its session yet. */
  private readonly handedOver = new Set<string>();
  /** When each sandbox being started outside the pools (egress) began: its id is not known yet. */
  private readonly startsBegan = new Set<{ at: number }>();
  private readonly reaper: PeriodicTask;
  /** Removals still running behind answered DELETEs: containers already stopped. */
  private readonly removals = new Map<string, Promise<void>>();
  private closed = false;

  constructor(private readonly options: SessionManagerOptions) {
    this.reaper = new PeriodicTask(
      () => this.reapOnce(),
      options.reapIntervalMs,
      (error) => options.log.warn({ err: error }, 'session reap failed'),
    );
  }

  get activeCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.state === 'active') n++;
    return n;
  }

  start(): void {
    this.reaper.start();
  }

  /** Containers this manager still answers for: live sessions' and those being removed. */
  /** When the oldest sandbox start outside the pools began (the reconciler lets it be). */
  oldestStartBegan(): number | undefined {
    let oldest: number | undefined;
    for (const { at } of this.startsBegan)
      oldest = oldest === undefined ? at : Math.min(oldest, at);
    return oldest;
  }

  ownedContainerIds(): Set<string> {
    const ids = new Set<string>([...this.removals.keys(), ...this.handedOver]);
    for (const session of this.sessions.values()) ids.add(session.sandbox.id);
    return ids;
  }

  async create(input: CreateSessionInput): Promise<Session> {
    const { options } = this;
    if (this.closed)
      throw new SandpoolError(
        'capacity_exhausted',
        'This worker is shutting down; retry on another.',
        5,
      );
    const template = input.template ?? DEFAULT_TEMPLATE;
    options.pools.check(template);
    if (input.network !== undefined && options.egress === undefined) {
      throw new SandpoolError(
        'egress_not_permitted',
        'This worker cannot give sessions network (its runtime has no egress support).',
      );
    }
    // The template's default list applies by the session's real template (`base` when unnamed).
    const policy = options.egress?.policyFor(input.network, template);
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
    // A create counts against the limit until its session is in the table: registering awaits
    // the journal (Redis), and a create that stopped counting then let a burst past the limit.
    this.creating++;
    try {
      const id = newSessionId();
      const { sandbox } =
        policy !== undefined && options.egress !== undefined
          ? { sandbox: await this.startWithNetwork(options.egress, id, policy, template) }
          : await options.pools.claim(template);
      this.handedOver.add(sandbox.id);
      try {
        return await this.register(id, sandbox, template, policy, input, ttlSeconds, stop);
      } finally {
        this.handedOver.delete(sandbox.id);
      }
    } finally {
      this.creating--;
    }
  }

  /**
   * A sandbox with network cannot come from a pool (NetworkMode none is final): egress starts one
   * for the session from the template's image, on its own network, behind its own proxy. The
   * reconciler leaves it alone while it starts and counts it as owned once its id is known.
   */
  private async startWithNetwork(
    egress: EgressService,
    id: string,
    policy: EgressPolicy,
    template: string,
  ): Promise<Sandbox> {
    const { options } = this;
    const began = { at: options.clock.now() };
    this.startsBegan.add(began);
    let created: string | undefined;
    try {
      const sandbox = await egress.createSandbox(
        id,
        policy,
        { ...options.workerLabels, ...options.pools.labelsOf(template), 'sandpool.session': id },
        {},
        options.pools.runtimeOf(template),
        (containerId) => {
          created = containerId;
          this.handedOver.add(containerId);
        },
      );
      created = undefined; // The caller owns it from here (handedOver, then the session).
      return sandbox;
    } finally {
      this.startsBegan.delete(began);
      // A failed start destroyed its sandbox; if that failed too, the reconciler removes it.
      if (created !== undefined) this.handedOver.delete(created);
    }
  }

  private async register(
    id: string,
    sandbox: Sandbox,
    template: string,
    policy: EgressPolicy | undefined,
    input: CreateSessionInput,
    ttlSeconds: number,
    stop: () => void,
  ): Promise<Session> {
    const { options } = this;
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
    let session: Session = {
      id,
      sandbox,
      template,
      createdAt: now,
      expiresAt: now + ttlSeconds * 1000,
      env: input.env ?? {},
      metadata: input.metadata ?? {},
      accessToken: newAccessToken(),
      state: 'active',
      ...(policy ? { network: policy.toInput() } : {}),
    };
    if (options.journal) {
      try {
        session = await this.claimId(session, options.journal);
      } catch (error) {
        await sandbox.destroy().catch(() => undefined);
        if (policy) await options.egress?.release(id);
        throw error;
      }
    }
    this.sessions.set(session.id, session);
    options.metrics.sessionsCreated.inc();
    stop();
    options.log.info(
      { sessionId: session.id, containerId: sandbox.id, template },
      'session created',
    );
    return session;
  }

  /** Maps the session's id to this worker; a taken id is replaced by a fresh one. */
  private async claimId(session: Session, journal: SessionJournal): Promise<Session> {
    let candidate = session;
    // A session with network keeps its id: its network and proxy are named by it.
    const attempts = session.network === undefined ? ID_CLAIM_ATTEMPTS : 1;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (await journal.claim(candidate)) return candidate;
      candidate = { ...candidate, id: newSessionId() };
    }
    throw new SandpoolError(
      'runtime_unavailable',
      'Could not register a new session id in Redis; retry.',
      1,
    );
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
    const session: Session = {
      ...adopted,
      accessToken: adopted.accessToken ?? newAccessToken(),
      state: 'active',
    };
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
    // The network goes once its container is removed (Docker keeps a network with endpoints).
    this.removeBehind(session.sandbox, this.egressRelease(session));
    this.options.pools.refill(session.template);
  }

  view(session: Session): SessionView {
    return {
      session_id: session.id,
      worker_id: this.options.workerId,
      template: session.template,
      created_at: new Date(session.createdAt).toISOString(),
      expires_at: new Date(session.expiresAt).toISOString(),
      metadata: session.metadata,
      access_token: session.accessToken,
    };
  }

  /** Ends every session; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reaper.stop();
    await Promise.allSettled([...this.sessions.values()].map((s) => this.end(s, 'shutdown')));
    await Promise.allSettled([...this.removals.values()]);
  }

  /** One reap round now, or the round in progress: rounds never overlap. */
  reap(): Promise<void> {
    return this.reaper.runNow();
  }

  /** Ends expired sessions and finds the ones whose container died behind the worker's back. */
  private async reapOnce(): Promise<void> {
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

  /**
   * Ends a session. The answer waits until the container is stopped (nothing of the session runs
   * any more) and the session is unreachable; the removal of the stopped container, the slow
   * part, runs behind it. A runtime that cannot stop separately destroys before answering, and so
   * does a shutdown. A removal that fails leaves an unowned container the reconciler removes.
   */
  private async end(session: Session, reason: 'deleted' | 'expired' | 'shutdown'): Promise<void> {
    if (session.state === 'closing') return;
    session.state = 'closing';
    const { runtime } = this.options;
    try {
      const release = this.egressRelease(session);
      if (reason === 'shutdown' || runtime.stop === undefined) {
        await session.sandbox.destroy();
        await release?.();
      } else {
        try {
          await runtime.stop(session.sandbox.id);
        } catch {
          await session.sandbox.destroy(); // Could not stop it: remove it before answering.
        }
        // The network goes once its container is removed (Docker keeps a network with endpoints).
        this.removeBehind(session.sandbox, release);
      }
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

  /** Destroys a container in the background; close() waits for every one still running. */
  private removeBehind(sandbox: Sandbox, after?: () => Promise<void>): void {
    if (this.removals.has(sandbox.id)) return;
    const removal = sandbox
      .destroy()
      .catch((error: unknown) => {
        this.options.log.warn(
          { err: error, containerId: sandbox.id },
          'container removal failed; the reconciler will retry',
        );
      })
      .then(() => after?.())
      .finally(() => this.removals.delete(sandbox.id));
    this.removals.set(sandbox.id, removal);
  }

  /** Stops the session's egress proxy and removes its network; undefined without network. */
  private egressRelease(session: Session): (() => Promise<void>) | undefined {
    const { egress } = this.options;
    if (session.network === undefined || egress === undefined) return undefined;
    return () => egress.release(session.id);
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

function newAccessToken(): string {
  return randomBytes(24).toString('base64url');
}

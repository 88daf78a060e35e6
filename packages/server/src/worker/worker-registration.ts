import type { Logger } from 'pino';
import type { RedisStore, SessionRecord, WorkerHeartbeat } from '../redis/redis-store.js';
import type { Clock } from '../sessions/clock.js';
import type { Session, SessionJournal } from '../sessions/session-manager.js';
import type { TemplateLoad } from '../templates/template-pools.js';

/** The numbers a heartbeat carries, read fresh each time. */
export interface WorkerLoad {
  poolSize: number;
  /** Per template, so coordinators place a session on a worker that serves its template. */
  templates?: TemplateLoad[];
  activeSessions: number;
  maxSessions: number;
  /** The worker refuses new sessions for its own reasons (its engine is down). */
  refusing: boolean;
}

export interface WorkerRegistrationOptions {
  store: RedisStore;
  workerId: string;
  version: string;
  intervalMs: number;
  ttlMs: number;
  load: () => WorkerLoad;
  /** The worker's live sessions, written back when Redis lost them. */
  sessions: () => Session[];
  clock: Clock;
  log: Logger;
}

type RegistrationState = 'idle' | 'beating' | 'stopped';

/**
 * A worker's presence in Redis: a heartbeat with a TTL that coordinators route by, and the journal
 * of its sessions for re-adoption after a restart. Redis failures never fail a request here: the
 * worker keeps serving the sessions it owns and only refuses new ones while it cannot renew.
 */
export class WorkerRegistration {
  private state: RegistrationState = 'idle';
  private url = '';
  private timer: NodeJS.Timeout | undefined;
  private beatInFlight = false;
  private beatAgain = false;
  /** Sessions must be written back (Redis lost them, or a journal write failed). */
  private restorePending = false;
  private lastRenewedAt: number | undefined;
  private lastError: string | undefined;
  private readonly writes = new Set<Promise<void>>();

  constructor(private readonly options: WorkerRegistrationOptions) {}

  /** Starts heartbeating as `url`; the first heartbeat is sent at once. */
  start(url: string): void {
    if (this.state !== 'idle') return;
    this.state = 'beating';
    this.url = url;
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Why this worker refuses new sessions now, or undefined when it takes them. */
  refusal(): string | undefined {
    const { clock, ttlMs, store } = this.options;
    if (this.state === 'stopped') return 'This worker is shutting down; retry on another.';
    if (this.lastRenewedAt !== undefined && clock.now() - this.lastRenewedAt < ttlMs) {
      return undefined;
    }
    return `This worker cannot renew its heartbeat in Redis at ${store.address} (${this.lastError ?? 'not registered yet'}), so coordinators may consider it gone; it takes no new sessions until Redis answers. Retry shortly.`;
  }

  get registered(): boolean {
    return this.refusal() === undefined;
  }

  /**
   * Records sessions and their id → worker mapping as they change: the worker that owns a session
   * writes where it lives (coordinators only read it). A new session is written before its create
   * is answered; later changes run in the background.
   */
  readonly journal: SessionJournal = {
    claim: async (session: Session) => {
      const claimed = await this.options.store.recordNewSession(
        this.options.workerId,
        session.id,
        recordOf(session),
        this.options.clock.now(),
      );
      this.nudge();
      return claimed;
    },
    record: (session: Session) =>
      this.track(
        this.options.store.renewSession(
          this.options.workerId,
          session.id,
          recordOf(session),
          this.options.clock.now(),
        ),
        session.id,
      ),
    forget: (sessionId: string) =>
      this.track(this.options.store.endSession(this.options.workerId, sessionId), sessionId),
  };

  /** Publishes the load now instead of at the next tick (a session came or went). */
  nudge(): void {
    if (this.beatInFlight) this.beatAgain = true;
    else void this.beat();
  }

  /** Stops heartbeating and withdraws the heartbeat, so coordinators stop routing here. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasBeating = this.state === 'beating';
    this.state = 'stopped';
    clearInterval(this.timer);
    if (!wasBeating) return;
    await this.options.store.removeHeartbeat(this.options.workerId).catch((error: unknown) => {
      this.options.log.warn(
        { err: error },
        'could not withdraw the heartbeat; it expires by itself',
      );
    });
  }

  /** Waits for journal writes still in flight; call before closing the store. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.writes]);
  }

  private async beat(): Promise<void> {
    if (this.beatInFlight || this.state !== 'beating') return;
    this.beatInFlight = true;
    const { store, clock, workerId, version, ttlMs, log } = this.options;
    const load = this.options.load();
    const now = clock.now();
    const heartbeat: WorkerHeartbeat = {
      worker_id: workerId,
      url: this.url,
      pool_size: load.poolSize,
      active_sessions: load.activeSessions,
      max_sessions: load.maxSessions,
      ...(load.templates ? { templates: load.templates } : {}),
      accepting: !load.refusing && load.activeSessions < load.maxSessions,
      last_heartbeat: new Date(now).toISOString(),
      version,
    };
    try {
      if (!(await store.publishHeartbeat(heartbeat, ttlMs))) this.restorePending = true;
      if (this.restorePending) {
        await this.restoreSessions(now);
        this.restorePending = false;
      }
      if (this.state !== 'beating') {
        // stop() ran while this beat was in flight: do not leave a heartbeat behind.
        await store.removeHeartbeat(workerId).catch(() => undefined);
        return;
      }
      if (this.lastRenewedAt === undefined || this.lastError !== undefined) {
        log.info({ url: this.url }, 'registered in Redis');
      }
      this.lastRenewedAt = now;
      this.lastError = undefined;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (this.lastError === undefined) log.warn({ err: error }, 'heartbeat failed');
      this.lastError = reason.split(';')[0];
    } finally {
      this.beatInFlight = false;
      if (this.beatAgain) {
        this.beatAgain = false;
        void this.beat();
      }
    }
  }

  /** After a lapse or a Redis that restarted empty, the sessions must be routable again. */
  private async restoreSessions(nowMs: number): Promise<void> {
    const live = this.options.sessions();
    if (live.length === 0) return;
    await this.options.store.restoreSessions(
      this.options.workerId,
      live.map((session) => ({ sessionId: session.id, record: recordOf(session) })),
      nowMs,
    );
    this.options.log.info({ sessions: live.length }, 'wrote live sessions back to Redis');
  }

  private track(write: Promise<void>, sessionId: string): void {
    this.nudge();
    const task = write.catch((error: unknown) => {
      this.restorePending = true;
      // Only re-adoption depends on it: a missing record means the session is not taken back.
      this.options.log.warn({ err: error, sessionId }, 'could not record the session in Redis');
    });
    this.writes.add(task);
    void task.finally(() => this.writes.delete(task));
  }
}

function recordOf(session: Session): SessionRecord {
  return {
    container_id: session.sandbox.id,
    template: session.template,
    created_at: session.createdAt,
    expires_at: session.expiresAt,
    env: session.env,
    metadata: session.metadata,
    access_token: session.accessToken,
    ...(session.network ? { network: session.network } : {}),
  };
}

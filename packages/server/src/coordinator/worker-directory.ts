import type { Logger } from 'pino';
import type { RedisStore, WorkerEntry } from '../redis/redis-store.js';
import type { Clock } from '../sessions/clock.js';
import type { TemplateLoad } from '../templates/template-pools.js';

/** One worker as the coordinator's /health shows it. */
export interface WorkerView {
  worker_id: string;
  url: string;
  /** Its heartbeat is live. */
  healthy: boolean;
  /** Free warm containers at the last heartbeat. */
  pool_size: number;
  active_sessions: number;
  max_sessions: number;
  /** Templates it serves, with their free warm containers; absent for workers that predate them. */
  templates?: TemplateLoad[];
  /** Takes new sessions (healthy and below its session limit). */
  accepting: boolean;
  last_heartbeat: string;
}

export interface WorkerDirectoryOptions {
  store: RedisStore;
  clock: Clock;
  log: Logger;
  /** A worker silent for this long is dropped from /health (it left for good). */
  forgetAfterMs?: number;
}

const DEFAULT_FORGET_AFTER_MS = 60 * 60 * 1000;

/** The workers registered in Redis: who is alive, and who should take the next session. */
export class WorkerDirectory {
  constructor(private readonly options: WorkerDirectoryOptions) {}

  /** Every known worker; Redis failures surface as `runtime_unavailable`. */
  async list(): Promise<WorkerView[]> {
    const entries = await this.options.store.workers();
    const forgetBefore =
      this.options.clock.now() - (this.options.forgetAfterMs ?? DEFAULT_FORGET_AFTER_MS);
    const stale = entries.filter(
      (e) => !e.alive && Date.parse(e.heartbeat.last_heartbeat) < forgetBefore,
    );
    if (stale.length > 0) {
      await this.options.store
        .forgetWorkers(stale.map((e) => e.heartbeat.worker_id))
        .catch((error: unknown) =>
          this.options.log.warn({ err: error }, 'could not prune workers'),
        );
    }
    return entries.filter((e) => !stale.includes(e)).map(toView);
  }

  /** The worker's live URL, or undefined when its heartbeat lapsed. */
  async liveUrl(workerId: string): Promise<string | undefined> {
    return (await this.options.store.heartbeat(workerId))?.url;
  }
}

function toView({ heartbeat: h, alive }: WorkerEntry): WorkerView {
  return {
    worker_id: h.worker_id,
    url: h.url,
    healthy: alive,
    pool_size: h.pool_size,
    active_sessions: h.active_sessions,
    max_sessions: h.max_sessions,
    ...(h.templates ? { templates: h.templates } : {}),
    accepting: alive && h.accepting,
    last_heartbeat: h.last_heartbeat,
  };
}

/**
 * The order to offer a new session in: workers that take sessions, most free warm containers
 * first (a session from the pool is ready at once), then fewest active sessions. Ties are broken
 * at random: heartbeats lag behind a burst, and a fixed order would send it all to one worker.
 */
export function rankForNewSession(
  workers: readonly WorkerView[],
  random: () => number = Math.random,
): WorkerView[] {
  return workers
    .filter((w) => w.accepting && w.active_sessions < w.max_sessions)
    .map((w) => ({ w, tie: random() }))
    .sort(
      (a, b) =>
        b.w.pool_size - a.w.pool_size || a.w.active_sessions - b.w.active_sessions || a.tie - b.tie,
    )
    .map(({ w }) => w);
}

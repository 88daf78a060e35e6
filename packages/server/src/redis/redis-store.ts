import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { TemplateLoad } from '../templates/template-pools.js';

/**
 * The Redis adapter: the only file that speaks Redis. Keys (all under `sandpool:`):
 *
 * - `worker:<id>`          the worker's last heartbeat (JSON), expiring after the heartbeat TTL;
 *                          present means alive
 * - `workers`              hash id → last heartbeat, kept after the key above expires so /health
 *                          can list a worker that went away as unhealthy
 * - `session:<id>`         the id of the worker that owns the session, expiring with the session
 * - `worker-sessions:<id>` hash session id → what the worker needs to re-adopt it after a restart
 */

/** What a worker publishes every heartbeat (snake_case: /health shows it as is). */
export interface WorkerHeartbeat {
  worker_id: string;
  /** Where coordinators reach the worker. */
  url: string;
  /** Free warm containers. */
  pool_size: number;
  active_sessions: number;
  max_sessions: number;
  /** The templates it serves, each with its free warm containers (absent: only `base`). */
  templates?: TemplateLoad[];
  /** False while the worker refuses new sessions (shutting down, or its heartbeat failed). */
  accepting: boolean;
  /** ISO 8601. */
  last_heartbeat: string;
  version: string;
}

export interface WorkerEntry {
  heartbeat: WorkerHeartbeat;
  /** The heartbeat key has not expired. */
  alive: boolean;
}

/** A session as its worker records it for re-adoption. */
export interface SessionRecord {
  container_id: string;
  /** Absent in records written before templates. */
  template?: string;
  /** Epoch milliseconds. */
  created_at: number;
  expires_at: number;
  env: Record<string, string>;
  metadata: Record<string, string>;
  /** Absent in records written before access tokens. */
  access_token?: string;
  /** The egress policy of a session with network, so a re-adopted session keeps it. */
  network?: { allow_out: string[]; deny_out?: string[] };
}

export interface RedisStoreOptions {
  /** `redis://[:password@]host:port[/db]`. */
  url: string;
  log: Logger;
  /** A connection attempt that takes longer fails (default 2000). */
  connectTimeoutMs?: number;
  /** A command that gets no answer in this time fails instead of hanging (default 2000). */
  commandTimeoutMs?: number;
  /** Called on every failed call (a metrics counter). */
  onFailure?: () => void;
}

const PREFIX = 'sandpool:';
/** A session mapping outlives its session a little, so a late request hears the worker's 404. */
export const SESSION_MAPPING_GRACE_MS = 60_000;
/** Owner of a session (KEYS[1]) and its heartbeat (ARGV[1] .. owner), or nil. */
const ROUTE_SCRIPT = `
local owner = redis.call('GET', KEYS[1])
if not owner then return nil end
return { owner, redis.call('GET', ARGV[1] .. owner) }
`;
/** Seconds a client should wait after a Redis failure; reconnects happen in the background. */
const RETRY_AFTER_SECONDS = 2;

export class RedisStore {
  private readonly redis: Redis;
  private readonly where: string;
  private closing: Promise<void> | undefined;
  private lastErrorLogAt = 0;
  private readonly onFailure: () => void;

  constructor(options: RedisStoreOptions) {
    this.where = describeRedisUrl(options.url);
    this.onFailure = options.onFailure ?? (() => undefined);
    this.redis = new Redis(options.url, {
      // Fail at once while disconnected instead of queueing: a request must not hang on Redis.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: options.connectTimeoutMs ?? 2000,
      commandTimeout: options.commandTimeoutMs ?? 2000,
      // Reconnect forever, quickly: Redis coming back must be noticed without a restart.
      retryStrategy: (times) => Math.min(100 * times, 1000),
    });
    this.redis.on('error', (error: Error) => {
      // ioredis reports every failed reconnect; one line every 10 s is enough to see the outage.
      const now = Date.now();
      if (now - this.lastErrorLogAt < 10_000) return;
      this.lastErrorLogAt = now;
      options.log.warn({ err: error, redis: this.where }, 'Redis connection failed; retrying');
    });
    this.redis.on('ready', () => options.log.info({ redis: this.where }, 'Redis connected'));
  }

  /** True once connected; resolves false after `timeoutMs` (connecting goes on in the background). */
  async ready(timeoutMs: number): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise<boolean>((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(value);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.redis.on('ready', onReady);
    });
  }

  get connected(): boolean {
    return this.redis.status === 'ready';
  }

  /** Host and port, without credentials, for messages. */
  get address(): string {
    return this.where;
  }

  async ping(): Promise<void> {
    await this.run('ping', () => this.redis.ping());
  }

  /**
   * Renews the heartbeat. Resolves false when there was no live heartbeat before (first beat,
   * a lapse, or a Redis that restarted empty): the worker then writes its sessions back.
   */
  async publishHeartbeat(heartbeat: WorkerHeartbeat, ttlMs: number): Promise<boolean> {
    const json = JSON.stringify(heartbeat);
    const key = `${PREFIX}worker:${heartbeat.worker_id}`;
    const results = await this.run('heartbeat', () =>
      this.redis
        .multi()
        .exists(key)
        .set(key, json, 'PX', ttlMs)
        .hset(`${PREFIX}workers`, heartbeat.worker_id, json)
        .exec()
        .then(checkMulti),
    );
    return results[0] === 1;
  }

  /**
   * Writes a worker's live sessions back (records and, where missing, their mappings), so its
   * sessions stay reachable after Redis lost its data.
   */
  async restoreSessions(
    workerId: string,
    sessions: readonly { sessionId: string; record: SessionRecord }[],
    nowMs: number,
  ): Promise<void> {
    if (sessions.length === 0) return;
    const batch = this.redis.multi();
    for (const { sessionId, record } of sessions) {
      const ttlMs = Math.max(record.expires_at - nowMs, 1000) + SESSION_MAPPING_GRACE_MS;
      batch.hset(`${PREFIX}worker-sessions:${workerId}`, sessionId, JSON.stringify(record));
      batch.set(`${PREFIX}session:${sessionId}`, workerId, 'PX', ttlMs, 'NX');
    }
    await this.run('session restore', () => batch.exec().then(checkMulti));
  }

  /** Ends the worker's liveness at once (a clean stop); /health still lists it, as unhealthy. */
  async removeHeartbeat(workerId: string): Promise<void> {
    await this.run('heartbeat removal', () => this.redis.del(`${PREFIX}worker:${workerId}`));
  }

  /** The live heartbeat of one worker, or undefined when it lapsed. */
  async heartbeat(workerId: string): Promise<WorkerHeartbeat | undefined> {
    const json = await this.run('worker lookup', () =>
      this.redis.get(`${PREFIX}worker:${workerId}`),
    );
    return json === null ? undefined : parseJson<WorkerHeartbeat>(json);
  }

  /** Every worker ever registered (until forgotten), with whether its heartbeat is live. */
  async workers(): Promise<WorkerEntry[]> {
    const known = await this.run('worker list', () => this.redis.hgetall(`${PREFIX}workers`));
    const ids = Object.keys(known).sort();
    if (ids.length === 0) return [];
    const live = await this.run('worker list', () =>
      this.redis.mget(ids.map((id) => `${PREFIX}worker:${id}`)),
    );
    const entries: WorkerEntry[] = [];
    ids.forEach((id, i) => {
      const fresh = live[i];
      const heartbeat = parseJson<WorkerHeartbeat>(fresh ?? known[id] ?? '');
      if (heartbeat) entries.push({ heartbeat, alive: fresh !== null && fresh !== undefined });
    });
    return entries;
  }

  async forgetWorkers(workerIds: string[]): Promise<void> {
    if (workerIds.length === 0) return;
    await this.run('worker removal', () => this.redis.hdel(`${PREFIX}workers`, ...workerIds));
  }

  /** Maps a new session to its worker; false when the id is taken (written atomically, NX). */
  async claimSession(sessionId: string, workerId: string, ttlMs: number): Promise<boolean> {
    const answer = await this.run('session mapping', () =>
      this.redis.set(`${PREFIX}session:${sessionId}`, workerId, 'PX', ttlMs, 'NX'),
    );
    return answer === 'OK';
  }

  /** Extends a mapping that still exists (a keep-alive); never re-creates a deleted one. */
  async refreshSession(sessionId: string, workerId: string, ttlMs: number): Promise<void> {
    await this.run('session mapping', () =>
      this.redis.set(`${PREFIX}session:${sessionId}`, workerId, 'PX', ttlMs, 'XX'),
    );
  }

  /**
   * The session's owner and that worker's live heartbeat, in one round trip (the coordinator asks
   * this on every request).
   */
  async sessionRoute(
    sessionId: string,
  ): Promise<{ workerId: string; heartbeat: WorkerHeartbeat | undefined } | undefined> {
    const answer = (await this.run('session lookup', () =>
      this.redis.eval(ROUTE_SCRIPT, 1, `${PREFIX}session:${sessionId}`, `${PREFIX}worker:`),
    )) as [string, string | null] | null;
    if (answer === null) return undefined;
    // A missing heartbeat comes back as a nil element (Lua's false).
    const [workerId, heartbeat] = answer;
    return {
      workerId,
      heartbeat: typeof heartbeat === 'string' ? parseJson<WorkerHeartbeat>(heartbeat) : undefined,
    };
  }

  async releaseSession(sessionId: string): Promise<void> {
    await this.run('session removal', () => this.redis.del(`${PREFIX}session:${sessionId}`));
  }

  async recordWorkerSession(
    workerId: string,
    sessionId: string,
    record: SessionRecord,
  ): Promise<void> {
    await this.run('session record', () =>
      this.redis.hset(`${PREFIX}worker-sessions:${workerId}`, sessionId, JSON.stringify(record)),
    );
  }

  /**
   * A worker's new session: its re-adoption record and its mapping (SET NX) in one transaction.
   * False when another session holds the id (the record is then not written).
   */
  async recordNewSession(
    workerId: string,
    sessionId: string,
    record: SessionRecord,
    nowMs: number,
  ): Promise<boolean> {
    const ttlMs = Math.max(record.expires_at - nowMs, 1000) + SESSION_MAPPING_GRACE_MS;
    const claimed = await this.run('session mapping', () =>
      this.redis.set(`${PREFIX}session:${sessionId}`, workerId, 'PX', ttlMs, 'NX'),
    );
    if (claimed !== 'OK') return false;
    await this.recordWorkerSession(workerId, sessionId, record);
    return true;
  }

  /** A session's new expiry: its record, and its mapping if it still exists (never re-created). */
  async renewSession(
    workerId: string,
    sessionId: string,
    record: SessionRecord,
    nowMs: number,
  ): Promise<void> {
    const ttlMs = Math.max(record.expires_at - nowMs, 1000) + SESSION_MAPPING_GRACE_MS;
    await this.run('session record', () =>
      this.redis
        .multi()
        .hset(`${PREFIX}worker-sessions:${workerId}`, sessionId, JSON.stringify(record))
        .set(`${PREFIX}session:${sessionId}`, workerId, 'PX', ttlMs, 'XX')
        .exec()
        .then(checkMulti),
    );
  }

  /** A session that ended: its record and its mapping go. */
  async endSession(workerId: string, sessionId: string): Promise<void> {
    await this.run('session removal', () =>
      this.redis
        .multi()
        .hdel(`${PREFIX}worker-sessions:${workerId}`, sessionId)
        .del(`${PREFIX}session:${sessionId}`)
        .exec()
        .then(checkMulti),
    );
  }

  async forgetWorkerSessions(workerId: string, sessionIds: string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    await this.run('session record', () =>
      this.redis.hdel(`${PREFIX}worker-sessions:${workerId}`, ...sessionIds),
    );
  }

  async workerSessions(workerId: string): Promise<Map<string, SessionRecord>> {
    const all = await this.run('session records', () =>
      this.redis.hgetall(`${PREFIX}worker-sessions:${workerId}`),
    );
    const records = new Map<string, SessionRecord>();
    for (const [id, json] of Object.entries(all)) {
      const record = parseJson<SessionRecord>(json);
      if (record) records.set(id, record);
    }
    return records;
  }

  /** Closes the connection; safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (this.redis.status === 'ready') await this.redis.quit();
      } catch {
        // Already gone: nothing to flush.
      } finally {
        this.redis.disconnect();
      }
    })();
    return this.closing;
  }

  /** Runs one call and turns any Redis failure into a 503 a client can act on. */
  private async run<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      this.onFailure();
      const reason = error instanceof Error ? error.message : String(error);
      throw new SandpoolError(
        'runtime_unavailable',
        `Redis at ${this.where} does not answer (${what}: ${reason}); the service reconnects by itself, retry in a few seconds.`,
        RETRY_AFTER_SECONDS,
        { cause: error },
      );
    }
  }
}

function checkMulti(results: [Error | null, unknown][] | null): unknown[] {
  if (results === null) throw new Error('transaction aborted');
  for (const [error] of results) if (error) throw error;
  return results.map(([, value]) => value);
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** `host:port` of a Redis URL, never its password. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'the configured Redis';
  }
}

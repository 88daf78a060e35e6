import type { Logger } from 'pino';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { Sandbox, SandboxLabels, SandboxRuntime } from '../runtime/sandbox-runtime.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import { PeriodicTask } from '../scheduling/periodic-task.js';
import type { Clock } from '../sessions/clock.js';
import { ElasticTarget } from './elastic-target.js';

export interface SandboxPoolOptions {
  runtime: SandboxRuntime;
  /** Labels every container of this pool carries (worker id, managed marker). */
  labels: SandboxLabels;
  /** Warm containers to keep ready when demand is calm (`--pool-size`). */
  size: number;
  /** The target never drops below this (`--pool-min`); defaults to 0. */
  min?: number;
  /** The target never grows above this (`--pool-max`); defaults to `size`. */
  max?: number;
  /** After this long without a miss the target steps back toward `size` (default 60 s). */
  shrinkAfterMs?: number;
  /** Containers started at once while refilling. */
  refillConcurrency: number;
  /** How often idle containers are checked, dead ones replaced and the target reviewed. */
  checkIntervalMs: number;
  clock: Clock;
  log: Logger;
  metrics: WorkerMetrics;
}

type PoolState = 'new' | 'warming' | 'running' | 'closing' | 'closed';

interface Waiter {
  resolve: (claim: PoolClaim) => void;
  reject: (error: unknown) => void;
}

export interface PoolClaim {
  sandbox: Sandbox;
  /** False when the claim waited for a container to start. */
  fromPool: boolean;
}

const MAX_BACKOFF_MS = 30_000;
/** Claims closer together than this are one burst; refilling waits for the burst to end... */
const BURST_QUIET_MS = 25;
/** ...but never longer than this. */
const BURST_MAX_DEFER_MS = 250;
/** Failed starts in a row after which every waiting claim is answered with the error. */
const FAIL_WAITERS_AFTER = 3;

/**
 * Keeps a target number of started containers ready so a session costs a hand-over, not a
 * container start. The target follows demand between min and max (see ElasticTarget). A claim
 * that finds the pool empty waits in line for the next container that comes up, and the pool
 * starts one for every waiting claim (at most `refillConcurrency` at once, the rate the engine
 * sustains). A claimed container leaves the pool for good: it is destroyed when its session ends.
 */
export class SandboxPool {
  private state: PoolState = 'new';
  private readonly idle: Sandbox[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly target: ElasticTarget;
  private starting = 0;
  /** When each start in flight began (clock time), oldest first. */
  private readonly startBegan: number[] = [];
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly check: PeriodicTask;
  private readonly inFlight = new Set<Promise<unknown>>();
  private burstTimer: NodeJS.Timeout | undefined;
  private burstStartedAt: number | undefined;
  private hitCount = 0;
  private missCount = 0;
  /** Why the last container start failed, for /health and the start-up summary. */
  lastError: string | undefined;

  constructor(private readonly options: SandboxPoolOptions) {
    this.target = new ElasticTarget(
      {
        base: options.size,
        // The floor is for a shrinking target; it never lifts the base above --pool-size.
        min: Math.min(options.min ?? 0, options.size),
        max: Math.max(options.max ?? options.size, options.size),
        shrinkAfterMs: options.shrinkAfterMs ?? 60_000,
      },
      options.clock.now(),
    );
    this.check = new PeriodicTask(
      () => this.checkIdle(),
      options.checkIntervalMs,
      (error) => options.log.warn({ err: error }, 'pool check failed'),
    );
  }

  /** Containers ready to be claimed now. */
  get idleCount(): number {
    return this.idle.length;
  }

  get startingCount(): number {
    return this.starting;
  }

  /** Claims waiting for a container to come up. */
  get waitingCount(): number {
    return this.waiters.length;
  }

  /** How many warm containers the pool aims for right now. */
  get targetSize(): number {
    return this.target.value;
  }

  /** Claims served from warm containers / claims that had to wait, since start. */
  get hits(): number {
    return this.hitCount;
  }

  get misses(): number {
    return this.missCount;
  }

  /** Every container the pool holds right now (idle ones), for the reconciler. */
  idleIds(): string[] {
    return this.idle.map((s) => s.id);
  }

  /**
   * When the oldest start in flight began, or undefined when none is: a container the engine
   * lists after that moment may be one the pool does not know the id of yet.
   */
  oldestStartBegan(): number | undefined {
    return this.startBegan[0];
  }

  /**
   * Fills the pool, reporting each container as it becomes ready. Resolves once every container
   * started (or failed: the background refill retries). Claims may arrive meanwhile.
   */
  async warm(onProgress: (ready: number, total: number) => void = () => undefined): Promise<void> {
    if (this.state !== 'new') throw new Error(`pool cannot warm from state ${this.state}`);
    this.state = 'warming';
    const total = this.target.value;
    let ready = 0;
    const workers = Array.from(
      { length: Math.min(this.options.refillConcurrency, Math.max(total, 1)) },
      async () => {
        while (
          this.state === 'warming' &&
          this.idle.length + this.starting < total + this.waiters.length
        ) {
          if (await this.startOne()) onProgress(Math.min(++ready, total), total);
          else break;
        }
      },
    );
    await Promise.all(workers);
    if (this.state !== 'warming') return;
    this.state = 'running';
    this.check.start();
    this.refill();
  }

  /**
   * Takes a warm container, or waits in line for the next one when the pool is empty. The caller
   * owns it from here and must destroy it.
   */
  claim(): Promise<PoolClaim> {
    if (this.state === 'closing' || this.state === 'closed') {
      return Promise.reject(shuttingDown());
    }
    const sandbox = this.idle.shift();
    this.target.onClaim(this.options.clock.now(), sandbox !== undefined);
    if (sandbox) {
      this.hitCount++;
      this.options.metrics.poolHits.inc();
      this.refillAfterBurst();
      return Promise.resolve({ sandbox, fromPool: true });
    }
    this.missCount++;
    this.options.metrics.poolMisses.inc();
    if (this.retryTimer !== undefined && this.failures >= FAIL_WAITERS_AFTER) {
      // Starts keep failing and the pool is backing off: say so now rather than after the pause.
      return Promise.reject(this.cannotStart());
    }
    const waiting = new Promise<PoolClaim>((resolve, reject) =>
      this.waiters.push({ resolve, reject }),
    );
    this.refill();
    return waiting;
  }

  /**
   * Starting containers competes for the CPU with the requests of a burst of claims, so the refill
   * waits until claims pause (bounded). An empty pool refills at once: demand outruns it already.
   */
  private refillAfterBurst(): void {
    if (this.idle.length === 0) {
      this.refill();
      return;
    }
    const now = performance.now();
    this.burstStartedAt ??= now;
    clearTimeout(this.burstTimer);
    const wait = Math.min(
      BURST_QUIET_MS,
      Math.max(0, this.burstStartedAt + BURST_MAX_DEFER_MS - now),
    );
    this.burstTimer = setTimeout(() => {
      this.burstTimer = undefined;
      this.burstStartedAt = undefined;
      this.refill();
    }, wait);
    this.burstTimer.unref();
  }

  /** Starts containers in the background until the target and every waiting claim are met. */
  refill(): void {
    if (this.state !== 'running' || this.retryTimer) return;
    while (
      this.idle.length + this.starting < this.target.value + this.waiters.length &&
      this.starting < this.options.refillConcurrency
    ) {
      const task = this.startOne().then((ok) => {
        if (ok) this.refill();
        else this.scheduleRetry();
      });
      this.track(task);
    }
  }

  /** Destroys every idle container, answers waiting claims, waits for starts in flight. */
  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.state = 'closing';
    clearTimeout(this.retryTimer);
    clearTimeout(this.burstTimer);
    for (const waiter of this.waiters.splice(0)) waiter.reject(shuttingDown());
    await this.check.stop();
    await Promise.allSettled([...this.inFlight]);
    const leftovers = this.idle.splice(0);
    await Promise.allSettled(leftovers.map((s) => s.destroy()));
    this.state = 'closed';
  }

  private async startOne(): Promise<boolean> {
    this.starting++;
    const began = this.options.clock.now();
    this.startBegan.push(began);
    try {
      const sandbox = await this.timedCreate();
      if (this.state === 'closing' || this.state === 'closed') {
        await sandbox.destroy().catch(() => undefined);
        return false;
      }
      this.failures = 0;
      this.lastError = undefined;
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve({ sandbox, fromPool: false });
      else this.idle.push(sandbox);
      return true;
    } catch (error) {
      this.failures++;
      this.lastError = error instanceof Error ? error.message : String(error);
      this.options.log.warn(
        { err: error, failures: this.failures },
        'could not start a pool container',
      );
      // One failed start (a slow agent on a loaded host) is retried for the waiting claims after
      // a short pause; once starts keep failing, every waiting claim hears why.
      if (this.failures >= FAIL_WAITERS_AFTER) {
        for (const waiter of this.waiters.splice(0)) waiter.reject(this.cannotStart());
      }
      return false;
    } finally {
      this.starting--;
      this.startBegan.splice(this.startBegan.indexOf(began), 1);
    }
  }

  /** What a waiting claim hears when starts keep failing: the engine's trouble, not the client's. */
  private cannotStart(): SandpoolError {
    return new SandpoolError(
      'runtime_unavailable',
      `No sandbox can be started right now (${this.lastError ?? 'unknown error'}); retry shortly.`,
      5,
    );
  }

  private async timedCreate(): Promise<Sandbox> {
    const stop = this.options.metrics.containerStartSeconds.startTimer();
    const sandbox = await this.options.runtime.create({ labels: this.options.labels });
    stop();
    return sandbox;
  }

  /** After failures (engine down, image missing) retry with a growing pause instead of a hot loop. */
  private scheduleRetry(): void {
    if (this.state !== 'running' || this.retryTimer) return;
    const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(this.failures, 8));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.refill();
    }, delay);
    this.retryTimer.unref();
  }

  /** After the engine came back: forget the backoff, replace what died, and refill now. */
  async resume(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.failures = 0;
    await this.check.runNow();
  }

  /** One round of the periodic check; joins the round in progress instead of overlapping it. */
  runCheck(): Promise<void> {
    return this.check.runNow();
  }

  /**
   * Replaces idle containers that died behind the worker's back, and lets the target shrink
   * after a calm period (removing the warm containers above it).
   */
  private async checkIdle(): Promise<void> {
    for (const sandbox of [...this.idle]) {
      let alive: boolean;
      try {
        alive = await sandbox.isAlive();
      } catch {
        continue; // The engine did not answer; try again next round.
      }
      if (alive) continue;
      const index = this.idle.indexOf(sandbox);
      // Claimed while we asked: its session owns it now and finds out by itself.
      if (index < 0) continue;
      this.idle.splice(index, 1);
      this.options.log.warn({ containerId: sandbox.id }, 'idle pool container died; replacing it');
      await sandbox.destroy().catch(() => undefined);
    }
    if (this.target.tick(this.options.clock.now())) {
      // Newest first out: the oldest containers have proven themselves alive the longest.
      const surplus = this.idle.splice(this.target.value);
      if (surplus.length > 0) {
        this.options.log.info(
          { target: this.target.value, removed: surplus.length },
          'demand calmed; pool target lowered',
        );
      }
      await Promise.allSettled(surplus.map((s) => s.destroy()));
    }
    this.refill();
  }

  private track(task: Promise<unknown>): void {
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
  }
}

function shuttingDown(): SandpoolError {
  return new SandpoolError(
    'capacity_exhausted',
    'This worker is shutting down; retry on another.',
    5,
  );
}

import type { Logger } from 'pino';
import type { Sandbox, SandboxLabels, SandboxRuntime } from '../runtime/sandbox-runtime.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';

export interface SandboxPoolOptions {
  runtime: SandboxRuntime;
  /** Labels every container of this pool carries (worker id, managed marker). */
  labels: SandboxLabels;
  /** Warm containers to keep ready. */
  size: number;
  /** Containers started at once while refilling. */
  refillConcurrency: number;
  /** How often idle containers are checked and dead ones replaced. */
  checkIntervalMs: number;
  log: Logger;
  metrics: WorkerMetrics;
}

type PoolState = 'new' | 'warming' | 'running' | 'closing' | 'closed';

const MAX_BACKOFF_MS = 30_000;
/** Claims closer together than this are one burst; refilling waits for the burst to end... */
const BURST_QUIET_MS = 25;
/** ...but never longer than this. */
const BURST_MAX_DEFER_MS = 250;

/**
 * Keeps `size` started containers ready so a session costs a hand-over, not a container start.
 * A claimed container leaves the pool for good: it is destroyed when its session ends.
 */
export class SandboxPool {
  private state: PoolState = 'new';
  private readonly idle: Sandbox[] = [];
  private starting = 0;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private burstTimer: NodeJS.Timeout | undefined;
  private burstStartedAt: number | undefined;
  /** Why the last container start failed, for /health and the start-up summary. */
  lastError: string | undefined;

  constructor(private readonly options: SandboxPoolOptions) {}

  /** Containers ready to be claimed now. */
  get idleCount(): number {
    return this.idle.length;
  }

  get startingCount(): number {
    return this.starting;
  }

  get targetSize(): number {
    return this.options.size;
  }

  /**
   * Fills the pool before the worker takes requests, reporting each container as it becomes
   * ready. Resolves once every container started (or failed: the background refill retries).
   */
  async warm(onProgress: (ready: number, total: number) => void = () => undefined): Promise<void> {
    if (this.state !== 'new') throw new Error(`pool cannot warm from state ${this.state}`);
    this.state = 'warming';
    const total = this.options.size;
    let ready = 0;
    const workers = Array.from(
      { length: Math.min(this.options.refillConcurrency, total) },
      async () => {
        while (this.state === 'warming' && this.idle.length + this.starting < total) {
          if (await this.startOne()) onProgress(++ready, total);
          else break;
        }
      },
    );
    await Promise.all(workers);
    if (this.state !== 'warming') return;
    this.state = 'running';
    this.checkTimer = setInterval(() => void this.checkIdle(), this.options.checkIntervalMs);
    this.checkTimer.unref();
    this.refill();
  }

  /**
   * Takes a warm container, or starts one when the pool is empty. The caller owns it from here
   * and must destroy it.
   */
  async claim(labels: SandboxLabels): Promise<{ sandbox: Sandbox; fromPool: boolean }> {
    if (this.state === 'closing' || this.state === 'closed') throw new Error('pool is closed');
    const sandbox = this.idle.shift();
    this.refillAfterBurst();
    if (sandbox) return { sandbox, fromPool: true };
    this.options.metrics.poolMisses.inc();
    const created = await this.timedCreate({ ...this.options.labels, ...labels });
    return { sandbox: created, fromPool: false };
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

  /** Starts containers in the background until the pool is full again. */
  refill(): void {
    if (this.state !== 'running' || this.retryTimer) return;
    while (
      this.idle.length + this.starting < this.options.size &&
      this.starting < this.options.refillConcurrency
    ) {
      const task = this.startOne().then((ok) => {
        if (ok) this.refill();
        else this.scheduleRetry();
      });
      this.track(task);
    }
  }

  /** Destroys every idle container and waits for starts in flight; safe to call twice. */
  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.state = 'closing';
    clearInterval(this.checkTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.burstTimer);
    await Promise.allSettled([...this.inFlight]);
    const leftovers = this.idle.splice(0);
    await Promise.allSettled(leftovers.map((s) => s.destroy()));
    this.state = 'closed';
  }

  private async startOne(): Promise<boolean> {
    this.starting++;
    try {
      const sandbox = await this.timedCreate(this.options.labels);
      if (this.state === 'closing' || this.state === 'closed') {
        await sandbox.destroy().catch(() => undefined);
        return false;
      }
      this.idle.push(sandbox);
      this.failures = 0;
      this.lastError = undefined;
      return true;
    } catch (error) {
      this.failures++;
      this.lastError = error instanceof Error ? error.message : String(error);
      this.options.log.warn(
        { err: error, failures: this.failures },
        'could not start a pool container',
      );
      return false;
    } finally {
      this.starting--;
    }
  }

  private async timedCreate(labels: SandboxLabels): Promise<Sandbox> {
    const stop = this.options.metrics.containerStartSeconds.startTimer();
    const sandbox = await this.options.runtime.create({ labels });
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
    await this.checkIdle();
  }

  /** Replaces idle containers that died behind the worker's back. */
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
      if (index >= 0) this.idle.splice(index, 1);
      this.options.log.warn({ containerId: sandbox.id }, 'idle pool container died; replacing it');
      await sandbox.destroy().catch(() => undefined);
    }
    this.refill();
  }

  private track(task: Promise<void>): void {
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
  }
}

import type { Logger } from 'pino';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import type { WorkerEntry } from '../redis/redis-store.js';
import type { SandboxLabels, SandboxRuntime } from '../runtime/sandbox-runtime.js';
import { PeriodicTask } from '../scheduling/periodic-task.js';
import type { Clock } from '../sessions/clock.js';

export interface ContainerReconcilerOptions {
  runtime: SandboxRuntime;
  workerId: string;
  /** The labels every container of this worker carries. */
  labels: SandboxLabels;
  /** Ids of the containers the worker answers for now: pooled, sessions', being removed. */
  owned: () => Iterable<string>;
  /**
   * When the oldest container start in flight began (undefined: none in flight). A container
   * first seen after that may be the one being started, whose id nobody knows yet: it waits.
   */
  oldestStartBegan?: () => number | undefined;
  intervalMs: number;
  /**
   * A container must be unowned for this long before it is removed: a container the pool is still
   * starting is listed by the engine before the pool knows its id.
   */
  graceMs: number;
  clock: Clock;
  log: Logger;
  metrics: Pick<WorkerMetrics, 'orphansRemoved'>;
  /** Distributed mode: the workers registered in Redis, to find those gone for good. */
  registry?: { workers(): Promise<WorkerEntry[]> };
  /** A registered worker whose last heartbeat is older than this has its containers removed. */
  deadWorkerGraceMs?: number;
  /** More to sweep after each round (egress: session networks nobody uses any more). */
  afterRound?: () => Promise<unknown>;
}

/**
 * Keeps the engine in step with the worker: removes every container labelled with this worker
 * that is neither pooled nor owned by a live session (a destroy that failed, a removal lost to an
 * engine hiccup), and, in distributed mode, the containers of registered workers whose heartbeat
 * has been gone for long. Rounds never overlap.
 */
export class ContainerReconciler {
  private readonly task: PeriodicTask;
  /** Unowned container id → when a round first saw it unowned. */
  private readonly suspects = new Map<string, number>();

  constructor(private readonly options: ContainerReconcilerOptions) {
    this.task = new PeriodicTask(
      () => this.reconcileOnce(),
      options.intervalMs,
      (error) => options.log.warn({ err: error }, 'container reconciliation failed'),
    );
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One round now (or the round in progress); resolves to how many containers it removed. */
  async runOnce(): Promise<number> {
    const before = this.removed;
    await this.task.runNow();
    return this.removed - before;
  }

  private removed = 0;

  private async reconcileOnce(): Promise<void> {
    const { runtime, clock, log } = this.options;
    const listed = await runtime.list(this.options.labels);
    const owned = new Set(this.options.owned());
    const now = clock.now();
    const seen = new Set<string>();
    const orphans: string[] = [];
    const startBegan = this.options.oldestStartBegan?.();
    for (const container of listed) {
      if (owned.has(container.id)) continue;
      seen.add(container.id);
      const since = this.suspects.get(container.id);
      if (since === undefined) this.suspects.set(container.id, now);
      else if (
        now - since >= this.options.graceMs &&
        (startBegan === undefined || startBegan > since)
      ) {
        orphans.push(container.id);
      }
    }
    for (const id of this.suspects.keys()) if (!seen.has(id)) this.suspects.delete(id);
    // Owned may have changed while we listed: ask again right before removing.
    const stillOwned = new Set(this.options.owned());
    for (const id of orphans) {
      if (stillOwned.has(id)) continue;
      log.warn({ containerId: id }, 'removing a container no pool or session owns');
      await this.remove(id);
    }
    await this.removeDeadWorkers(now);
    await this.options.afterRound?.();
  }

  private async removeDeadWorkers(now: number): Promise<void> {
    const { registry, deadWorkerGraceMs, runtime, log, workerId } = this.options;
    if (registry === undefined || deadWorkerGraceMs === undefined) return;
    for (const entry of await registry.workers()) {
      const id = entry.heartbeat.worker_id;
      if (entry.alive || id === workerId) continue;
      const lastSeen = Date.parse(entry.heartbeat.last_heartbeat);
      if (!Number.isFinite(lastSeen) || now - lastSeen < deadWorkerGraceMs) continue;
      const left = await runtime.list({ 'sandpool.managed': 'true', 'sandpool.worker': id });
      if (left.length === 0) continue;
      log.warn(
        {
          deadWorkerId: id,
          containers: left.length,
          lastHeartbeat: entry.heartbeat.last_heartbeat,
        },
        'removing the containers of a worker whose heartbeat is long gone',
      );
      for (const container of left) await this.remove(container.id);
    }
  }

  private async remove(id: string): Promise<void> {
    try {
      await this.options.runtime.remove(id);
      this.suspects.delete(id);
      this.removed++;
      this.options.metrics.orphansRemoved.inc();
    } catch (error) {
      this.options.log.warn(
        { err: error, containerId: id },
        'could not remove an orphan; retrying',
      );
    }
  }
}

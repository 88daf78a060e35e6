import type { Logger } from 'pino';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import { SandboxPool } from '../pool/sandbox-pool.js';
import type { Sandbox, SandboxLabels, SandboxRuntime } from '../runtime/sandbox-runtime.js';
import type { Clock } from '../sessions/clock.js';
import type { SandboxSource } from '../sessions/session-manager.js';
import type { TemplateMetrics } from './template-metrics.js';
import type { TemplateSpec } from './template-spec.js';

/** The label naming a container's template (re-adoption and `docker ps` read it). */
export const TEMPLATE_CONTAINER_LABEL = 'sandpool.template';

/** `ready`: pooled and served; `image_missing`: configured, but its image is not on the engine. */
export type TemplateStatus = 'ready' | 'image_missing';

/** One template as `GET /v1/templates` and `/health` show it. */
export interface TemplateView {
  name: string;
  image: string;
  status: TemplateStatus;
  /** Warm sandboxes ready now. */
  pool_size: number;
  /** Warm sandboxes the pool keeps. */
  pool_target: number;
  /** Sandboxes starting for the pool. */
  pool_starting: number;
  /** Session creates waiting for one of them. */
  pool_waiting: number;
  /** Creates that found a warm sandbox, and creates that had to wait for one. */
  pool_hits: number;
  pool_misses: number;
  active_sessions: number;
  /** Why the last start failed, while the pool is short. */
  pool_error?: string;
}

/** What a heartbeat says of a template, for the coordinator's placement. */
export interface TemplateLoad {
  name: string;
  pool_size: number;
  active_sessions: number;
  /** The pool's figures for the console on a coordinator (absent from older workers). */
  pool_target?: number;
  pool_starting?: number;
  pool_hits?: number;
  pool_misses?: number;
}

export interface TemplatePoolsOptions {
  templates: readonly TemplateSpec[];
  /** The runtime that starts sandboxes of one image (the Docker adapter takes the image per instance). */
  runtimeFor: (template: TemplateSpec) => SandboxRuntime;
  /** Whether the engine has the image; a template without it is reported, not pooled. */
  imageExists: (image: string) => Promise<boolean>;
  /** Labels every container of this worker carries. */
  workerLabels: SandboxLabels;
  /** Every template's pool grows with demand up to this (`--pool-max`), never below its size. */
  poolMax: number;
  /** ...and shrinks back no lower than this (`--pool-min`), never above its size. */
  poolMin: number;
  shrinkAfterMs: number;
  refillConcurrency: number;
  checkIntervalMs: number;
  clock: Clock;
  log: Logger;
  metrics: WorkerMetrics;
  templateMetrics?: TemplateMetrics;
  /** Active sessions of a template, for the views. */
  activeSessions: (template: string) => number;
}

interface Entry {
  spec: TemplateSpec;
  /** Undefined while the template's image is missing. */
  pool: SandboxPool | undefined;
  /** The runtime of the pool (undefined with it). */
  runtime: SandboxRuntime | undefined;
}

/**
 * The worker's warm pools, one `SandboxPool` per template (wrapped, not changed): sessions claim
 * from their template's pool, and /health, /v1/templates, the heartbeat and the metrics read the
 * figures per template.
 */
export class TemplatePools implements SandboxSource {
  private readonly entries = new Map<string, Entry>();

  private constructor(private readonly options: TemplatePoolsOptions) {}

  /**
   * Checks each template's image and makes the pools of those that exist. A missing image is a
   * start-up message naming the build command; the worker serves the other templates.
   */
  static async create(
    options: TemplatePoolsOptions,
    progress: (line: string) => void,
  ): Promise<TemplatePools> {
    const pools = new TemplatePools(options);
    for (const spec of options.templates) {
      let pool: SandboxPool | undefined;
      let runtime: SandboxRuntime | undefined;
      if (await options.imageExists(spec.image)) {
        runtime = options.runtimeFor(spec);
        pool = new SandboxPool({
          runtime,
          labels: { ...options.workerLabels, [TEMPLATE_CONTAINER_LABEL]: spec.name },
          size: spec.poolSize,
          min: options.poolMin,
          max: options.poolMax,
          shrinkAfterMs: options.shrinkAfterMs,
          refillConcurrency: options.refillConcurrency,
          checkIntervalMs: options.checkIntervalMs,
          clock: options.clock,
          log: options.log.child({ template: spec.name }),
          metrics: options.metrics,
        });
      } else {
        progress(
          `template ${spec.name}: image ${spec.image} is missing; build it with \`npx sandpool template build ${spec.name}\` and restart (serving the other templates meanwhile)`,
        );
      }
      pools.entries.set(spec.name, { spec, pool, runtime });
    }
    return pools;
  }

  /** Fills every pool, all at once; progress lines name the template. */
  async warm(progress: (line: string) => void): Promise<void> {
    await Promise.all(
      [...this.entries.values()].map(async ({ spec, pool }) => {
        if (pool === undefined) return;
        const started = performance.now();
        progress(
          `template ${spec.name}: warming pool with ${spec.poolSize} container(s) from ${spec.image}...`,
        );
        await pool.warm((ready, total) =>
          progress(`template ${spec.name}: container ${ready}/${total} ready`),
        );
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        progress(
          pool.idleCount < spec.poolSize
            ? `template ${spec.name}: ${pool.idleCount}/${spec.poolSize} containers after ${seconds} s (${pool.lastError ?? 'unknown error'}); retrying in the background`
            : `template ${spec.name}: pool ready: ${pool.idleCount} container(s) in ${seconds} s`,
        );
      }),
    );
  }

  check(template: string): void {
    this.poolOf(template);
  }

  async claim(template: string): Promise<{ sandbox: Sandbox; fromPool: boolean }> {
    const pool = this.poolOf(template);
    const metrics = this.options.templateMetrics;
    const stop = metrics?.claimSeconds.startTimer({ template });
    const claimed = await pool.claim();
    stop?.();
    metrics?.sessionsCreated.inc({ template });
    if (!claimed.fromPool) metrics?.poolMisses.inc({ template });
    return claimed;
  }

  /** The runtime the template's pool starts sandboxes with (for one started outside it). */
  runtimeOf(template: string): SandboxRuntime {
    this.poolOf(template); // template_not_found unless served
    return (this.entries.get(template) as Entry).runtime as SandboxRuntime;
  }

  labelsOf(template: string): Record<string, string> {
    return { [TEMPLATE_CONTAINER_LABEL]: template };
  }

  refill(template: string): void {
    this.entries.get(template)?.pool?.refill();
  }

  /** After the engine came back: every pool replaces what died and refills. */
  async resume(): Promise<void> {
    await Promise.all([...this.pools()].map((pool) => pool.resume()));
  }

  /** Destroys every idle container of every pool; safe to call twice. */
  async close(): Promise<void> {
    await Promise.all([...this.pools()].map((pool) => pool.close()));
  }

  /** Names of the templates this worker can start sessions on. */
  get served(): string[] {
    return [...this.entries.values()].filter((e) => e.pool !== undefined).map((e) => e.spec.name);
  }

  /** Warm containers over all templates. */
  get idleCount(): number {
    return this.sum((pool) => pool.idleCount);
  }

  get startingCount(): number {
    return this.sum((pool) => pool.startingCount);
  }

  get targetSize(): number {
    return this.sum((pool) => pool.targetSize);
  }

  /** Session creates waiting for a container to start, over all templates. */
  get waitingCount(): number {
    return this.sum((pool) => pool.waitingCount);
  }

  get hits(): number {
    return this.sum((pool) => pool.hits);
  }

  get misses(): number {
    return this.sum((pool) => pool.misses);
  }

  /** Ids of every warm container (the reconciler spares them). */
  idleIds(): string[] {
    return [...this.pools()].flatMap((pool) => pool.idleIds());
  }

  /** When the oldest container start in flight began, over all pools (the reconciler spares what it may have made). */
  oldestStartBegan(): number | undefined {
    const began = [...this.pools()]
      .map((pool) => pool.oldestStartBegan())
      .filter((t): t is number => t !== undefined);
    return began.length === 0 ? undefined : Math.min(...began);
  }

  /** Why the last start of any pool failed, while one is short. */
  get lastError(): string | undefined {
    for (const { spec, pool } of this.entries.values()) {
      if (pool?.lastError !== undefined) return `${spec.name}: ${pool.lastError}`;
    }
    return undefined;
  }

  views(): TemplateView[] {
    return [...this.entries.values()].map(({ spec, pool }) => ({
      name: spec.name,
      image: spec.image,
      status: pool === undefined ? 'image_missing' : 'ready',
      pool_size: pool?.idleCount ?? 0,
      pool_target: pool?.targetSize ?? spec.poolSize,
      pool_starting: pool?.startingCount ?? 0,
      pool_waiting: pool?.waitingCount ?? 0,
      pool_hits: pool?.hits ?? 0,
      pool_misses: pool?.misses ?? 0,
      active_sessions: this.options.activeSessions(spec.name),
      ...(pool?.lastError !== undefined && pool.idleCount < pool.targetSize
        ? { pool_error: pool.lastError }
        : {}),
    }));
  }

  /** The served templates' figures, for the heartbeat. */
  loads(): TemplateLoad[] {
    return this.views()
      .filter((view) => view.status === 'ready')
      .map(({ name, pool_size, active_sessions, ...pool }) => ({
        name,
        pool_size,
        active_sessions,
        pool_target: pool.pool_target,
        pool_starting: pool.pool_starting,
        pool_hits: pool.pool_hits,
        pool_misses: pool.pool_misses,
      }));
  }

  private poolOf(template: string): SandboxPool {
    const entry = this.entries.get(template);
    if (entry === undefined) {
      throw new SandpoolError(
        'template_not_found',
        `No template "${template}" on this worker; it serves ${this.describeServed()} (GET /v1/templates lists them).`,
      );
    }
    if (entry.pool === undefined) {
      throw new SandpoolError(
        'template_not_found',
        `Template "${template}" is configured on this worker but its image ${entry.spec.image} is missing; the operator builds it with \`npx sandpool template build ${template}\` and restarts the worker. Meanwhile it serves ${this.describeServed()}.`,
      );
    }
    return entry.pool;
  }

  private describeServed(): string {
    const served = this.served;
    return served.length === 0 ? 'no template' : served.join(', ');
  }

  private *pools(): Iterable<SandboxPool> {
    for (const { pool } of this.entries.values()) if (pool !== undefined) yield pool;
  }

  private sum(pick: (pool: SandboxPool) => number): number {
    let total = 0;
    for (const pool of this.pools()) total += pick(pool);
    return total;
  }
}

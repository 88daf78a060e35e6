import type { FastifyInstance } from 'fastify';
import { LOG_REDACTION } from '../http/log-redaction.js';
import { pino, type Logger } from 'pino';
import type { CoordinatorConfig } from '../config/coordinator-config.js';
import { checkBind } from '../config/settings-table.js';
import { buildCoordinatorApp } from '../http/build-coordinator-app.js';
import type { HealthReport } from '../http/routes/service-routes.js';
import { RedisStore } from '../redis/redis-store.js';
import { systemClock, type Clock } from '../sessions/clock.js';
import { CoordinatorMetrics } from './coordinator-metrics.js';
import { SessionRouter } from './session-router.js';
import { WorkerDirectory, type WorkerView } from './worker-directory.js';
import { WorkerProxy } from './worker-proxy.js';
import { closeWithGrace, listenAt } from '../http/server-lifecycle.js';

export const COORDINATOR_VERSION = '0.1.0';

export interface CoordinatorDependencies {
  log?: Logger;
  clock?: Clock;
}

type CoordinatorState = 'starting' | 'running' | 'closing' | 'closed';

/** How long start-up waits for Redis before listening anyway (and answering 503 until it comes). */
const REDIS_WAIT_MS = 3000;

/**
 * The coordinator: the worker's public API in front of many workers. It keeps no state of its
 * own (workers and session owners are in Redis), so several can run side by side.
 */
export class Coordinator {
  private state: CoordinatorState = 'starting';
  private closing: Promise<void> | undefined;

  private constructor(
    readonly config: CoordinatorConfig,
    readonly app: FastifyInstance,
    private readonly store: RedisStore,
    private readonly proxy: WorkerProxy,
    readonly log: Logger,
  ) {}

  static async create(
    config: CoordinatorConfig,
    deps: CoordinatorDependencies = {},
  ): Promise<Coordinator> {
    checkBind(config);
    const log =
      deps.log ??
      pino({ level: config.logLevel, redact: LOG_REDACTION }).child({
        role: 'coordinator',
      });
    const clock = deps.clock ?? systemClock;
    // The gauge reads the directory at scrape time, once it exists.
    const metrics: CoordinatorMetrics = new CoordinatorMetrics(
      async () => (await directory.list()).filter((w) => w.healthy).length,
    );
    const store = new RedisStore({
      url: config.redisUrl,
      log,
      onFailure: () => metrics.redisErrors.inc(),
    });
    const directory: WorkerDirectory = new WorkerDirectory({ store, clock, log });
    const proxy = new WorkerProxy({ connectTimeoutMs: config.workerConnectTimeoutMs });
    const router = new SessionRouter({
      store,
      directory,
      proxy,
      metrics,
      clock,
      log,
      createTimeoutMs: config.createTimeoutMs,
    });
    if (!(await store.ready(REDIS_WAIT_MS))) {
      log.warn({ redis: store.address }, 'Redis does not answer yet; answering 503 until it does');
    }

    const startedAt = clock.now();
    const health = async (): Promise<HealthReport> => {
      const base = {
        role: 'coordinator',
        version: COORDINATOR_VERSION,
        uptime_seconds: Math.round((clock.now() - startedAt) / 1000),
      };
      let workers: WorkerView[];
      try {
        workers = await directory.list();
      } catch (error) {
        return {
          status: 'unhealthy',
          reason: error instanceof Error ? error.message : String(error),
          redis: 'unreachable',
          pool_size: 0,
          active_sessions: 0,
          healthy_workers: 0,
          total_workers: 0,
          workers: [],
          ...base,
        };
      }
      const healthy = workers.filter((w) => w.healthy);
      const sum = (pick: (w: WorkerView) => number) => healthy.reduce((n, w) => n + pick(w), 0);
      return {
        status: healthy.length > 0 ? 'healthy' : 'unhealthy',
        ...(healthy.length === 0
          ? {
              reason: `No worker has a live heartbeat in Redis at ${store.address}; start workers with --redis and --advertise-url.`,
            }
          : {}),
        redis: 'connected',
        pool_size: sum((w) => w.pool_size),
        active_sessions: sum((w) => w.active_sessions),
        max_sessions: sum((w) => w.max_sessions),
        healthy_workers: healthy.length,
        total_workers: workers.length,
        workers,
        ...base,
      };
    };

    const app = await buildCoordinatorApp({
      router,
      proxy,
      metrics,
      workerApiKey: config.workerApiKey,
      bodyLimitBytes: config.bodyLimitBytes,
      health,
      registry: metrics.registry,
      log,
      apiKey: config.apiKey,
      faces: config,
      e2b: { directory },
    });
    return new Coordinator(config, app, store, proxy, log);
  }

  /** Starts listening; resolves to the URL clients use. */
  async listen(): Promise<string> {
    const url = await listenAt(this.app, this.config.host, this.config.port);
    this.state = 'running';
    return url.origin;
  }

  /**
   * Stops taking requests, lets running ones finish for a moment, and drops its connections;
   * sessions live on in the workers. Safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closing';
      await closeWithGrace(this.app);
      this.proxy.close();
      await this.store.close();
      this.state = 'closed';
    })();
    return this.closing;
  }

  get status(): CoordinatorState {
    return this.state;
  }
}

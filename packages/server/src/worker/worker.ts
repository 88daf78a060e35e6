import type { FastifyInstance } from 'fastify';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { checkBind } from '../config/settings-table.js';
import type { WorkerConfig } from '../config/worker-config.js';
import { SandpoolError } from '../errors/sandpool-error.js';
import { ExecService } from '../exec/exec-service.js';
import { FileService } from '../files/file-service.js';
import { WatchService } from '../files/watch-service.js';
import { ProcessService } from '../processes/process-service.js';
import { buildApp } from '../http/build-app.js';
import type { HealthReport } from '../http/routes/service-routes.js';
import { WorkerMetrics } from '../metrics/worker-metrics.js';
import { SandboxPool } from '../pool/sandbox-pool.js';
import { RedisStore } from '../redis/redis-store.js';
import { DockerRuntime } from '../runtime/docker/docker-runtime.js';
import { RuntimeMonitor } from '../runtime/runtime-monitor.js';
import type { SandboxRuntime } from '../runtime/sandbox-runtime.js';
import { systemClock, type Clock } from '../sessions/clock.js';
import { SessionManager } from '../sessions/session-manager.js';
import { planLeftovers } from './session-readoption.js';
import { WorkerRegistration } from './worker-registration.js';
import { closeWithGrace, listenAt } from '../http/server-lifecycle.js';

export const VERSION = '0.1.0';

export interface WorkerDependencies {
  log?: Logger;
  /** Defaults to the Docker adapter configured from `config`. */
  runtime?: SandboxRuntime;
  clock?: Clock;
  /** Called once per warm container at start-up (`container 3/5 ready`). */
  onProgress?: (line: string) => void;
}

type WorkerState = 'starting' | 'running' | 'closing' | 'closed';

/** One worker: a Docker engine, its pool, its sessions and the HTTP API over them. */
export class Worker {
  private state: WorkerState = 'starting';
  private closing: Promise<void> | undefined;

  private constructor(
    readonly config: WorkerConfig,
    readonly app: FastifyInstance,
    readonly sessions: SessionManager,
    readonly pool: SandboxPool,
    private readonly runtime: SandboxRuntime,
    readonly log: Logger,
    private readonly monitor: RuntimeMonitor,
    /** Distributed mode only. */
    private readonly registration?: WorkerRegistration,
    private readonly store?: RedisStore,
  ) {}

  /** Labels on every container this worker creates. */
  static labelsFor(workerId: string): Record<string, string> {
    return { 'sandpool.managed': 'true', 'sandpool.worker': workerId };
  }

  /**
   * Checks the engine, removes what an earlier run of this worker id left behind, warms the pool
   * and builds the app. Call `listen()` next.
   */
  static async create(config: WorkerConfig, deps: WorkerDependencies = {}): Promise<Worker> {
    checkBind(config);
    const log = deps.log ?? pino({ level: config.logLevel }).child({ workerId: config.workerId });
    const progress = deps.onProgress ?? ((line: string) => log.info(line));
    const runtime =
      deps.runtime ??
      new DockerRuntime({
        limits: {
          image: config.image,
          memoryMb: config.memoryMb,
          cpus: config.cpus,
          pidsLimit: config.pidsLimit,
          network: config.network,
          homeSizeMb: config.homeSizeMb,
          tmpSizeMb: config.tmpSizeMb,
          ociRuntime: config.ociRuntime,
        },
      });
    await runtime.ping();
    const labels = Worker.labelsFor(config.workerId);

    const clock = deps.clock ?? systemClock;
    const store = config.redisUrl ? new RedisStore({ url: config.redisUrl, log }) : undefined;
    const leftovers = await runtime.list(labels);
    const plan = await planLeftovers(store, runtime, config.workerId, leftovers, clock.now(), log);
    if (plan.remove.length > 0) {
      progress(
        `removing ${plan.remove.length} container(s) left by an earlier run of ${config.workerId}`,
      );
      await Promise.allSettled(plan.remove.map((c) => runtime.remove(c.id)));
    }
    const registration = store
      ? new WorkerRegistration({
          store,
          workerId: config.workerId,
          version: VERSION,
          intervalMs: config.heartbeatIntervalMs,
          ttlMs: config.heartbeatTtlMs,
          load: () => ({
            poolSize: pool.idleCount,
            activeSessions: sessions.activeCount,
            maxSessions: config.maxSessions,
            refusing: monitor.refusal() !== undefined,
          }),
          sessions: () => sessions.list(),
          clock,
          log,
        })
      : undefined;

    // The gauges are read at scrape time, after the pool and sessions below exist.
    const metrics: WorkerMetrics = new WorkerMetrics({
      poolIdle: (): number => pool.idleCount,
      activeSessions: (): number => sessions.activeCount,
    });
    const monitor: RuntimeMonitor = new RuntimeMonitor({
      runtime,
      intervalMs: config.engineCheckIntervalMs,
      log,
      onRecovered: () => {
        void pool.resume();
        void sessions.reap();
      },
    });
    const pool: SandboxPool = new SandboxPool({
      runtime,
      labels,
      size: config.poolSize,
      refillConcurrency: config.poolRefillConcurrency,
      checkIntervalMs: config.poolCheckIntervalMs,
      log,
      metrics,
    });
    const sessions: SessionManager = new SessionManager({
      workerId: config.workerId,
      runtime,
      pool,
      workerLabels: labels,
      maxSessions: config.maxSessions,
      defaultTtlSeconds: config.sessionTtlSeconds,
      maxTtlSeconds: config.maxSessionTtlSeconds,
      reapIntervalMs: config.reapIntervalMs,
      clock,
      log,
      metrics,
      journal: registration?.journal,
      refuseNew: () => {
        const registrationRefusal = registration?.refusal();
        return (
          monitor.refusal() ??
          (registrationRefusal === undefined
            ? undefined
            : new SandpoolError('capacity_exhausted', registrationRefusal, 2))
        );
      },
    });
    for (const { sessionId, record, container } of plan.adopt) {
      const sandbox = runtime.attach?.(container); // planLeftovers adopts only when it exists
      if (sandbox === undefined) continue;
      sessions.adopt({
        id: sessionId,
        sandbox,
        createdAt: record.created_at,
        expiresAt: record.expires_at,
        env: record.env,
        metadata: record.metadata,
      });
    }
    if (plan.adopt.length > 0) {
      progress(`re-adopted ${plan.adopt.length} live session(s) of an earlier run`);
    }
    const exec = new ExecService({
      sessions,
      defaultTimeoutMs: config.execTimeoutMs,
      maxTimeoutMs: config.maxExecTimeoutMs,
      outputLimitBytes: config.outputLimitBytes,
      metrics,
    });

    const warmStart = performance.now();
    progress(`warming pool with ${config.poolSize} container(s) from ${config.image}...`);
    await pool.warm((ready, total) => progress(`container ${ready}/${total} ready`));
    const seconds = ((performance.now() - warmStart) / 1000).toFixed(1);
    if (pool.idleCount < config.poolSize) {
      progress(
        `pool has ${pool.idleCount}/${config.poolSize} containers after ${seconds} s (${pool.lastError ?? 'unknown error'}); retrying in the background`,
      );
    } else {
      progress(`pool ready: ${pool.idleCount} container(s) in ${seconds} s`);
    }
    sessions.start();
    monitor.start();

    const startedAt = Date.now();
    const health = async (): Promise<HealthReport> => {
      const report = {
        worker_id: config.workerId,
        pool_size: pool.idleCount,
        pool_target: pool.targetSize,
        pool_starting: pool.startingCount,
        pool_min: config.poolMin,
        active_sessions: sessions.activeCount,
        max_sessions: config.maxSessions,
        version: VERSION,
        uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
        ...(registration ? { registered: registration.registered } : {}),
      };
      try {
        await runtime.ping();
      } catch (error) {
        return {
          status: 'unhealthy',
          reason: error instanceof Error ? error.message : String(error),
          ...report,
        };
      }
      return {
        status: 'healthy',
        ...report,
        ...(pool.idleCount < config.poolMin && pool.lastError
          ? { pool_error: pool.lastError }
          : {}),
      };
    };

    const processes = new ProcessService({
      sessions,
      log,
      limits: {
        maxPerSession: config.maxProcesses,
        bufferBytesPerProcess: config.processBufferBytes,
        bufferBytesPerWorker: config.processWorkerBufferBytes,
        retainExitedMs: config.processRetainSeconds * 1000,
      },
    });
    const app = await buildApp({
      processes: { processes, watches: new WatchService(sessions) },
      sessions,
      exec,
      files: new FileService(sessions),
      health,
      registry: metrics.registry,
      log,
      apiKey: config.apiKey,
      uploadLimitBytes: config.uploadLimitBytes,
    });
    app.addHook('onClose', async () => processes.close());
    return new Worker(config, app, sessions, pool, runtime, log, monitor, registration, store);
  }

  /** Starts listening; resolves to the URL clients use. */
  async listen(): Promise<string> {
    const url = (await listenAt(this.app, this.config.host, this.config.port)).origin;
    this.state = 'running';
    // A wildcard address is no address to reach: name the host instead (or --advertise-url).
    const reachable = ['0.0.0.0', '::'].includes(this.config.host)
      ? `http://${hostname()}:${new URL(url).port}`
      : url;
    this.registration?.start(this.config.advertiseUrl?.replace(/\/$/, '') ?? reachable);
    return url;
  }

  /** Stops taking requests, then destroys every session and pooled container. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closing';
      await this.registration?.stop(); // Coordinators stop sending sessions here first.
      await closeWithGrace(this.app);
      this.monitor.stop();
      await this.sessions.close();
      await this.pool.close();
      await this.runtime.close();
      await this.registration?.flush();
      await this.store?.close();
      this.state = 'closed';
    })();
    return this.closing;
  }

  get status(): WorkerState {
    return this.state;
  }
}

import type { FastifyInstance } from 'fastify';
import { LOG_REDACTION } from '../http/log-redaction.js';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { checkBind } from '../config/settings-table.js';
import type { WorkerConfig } from '../config/worker-config.js';
import { SandpoolError } from '../errors/sandpool-error.js';
import { CodeService } from '../code/code-service.js';
import { ExecService } from '../exec/exec-service.js';
import { FileService } from '../files/file-service.js';
import { WatchService } from '../files/watch-service.js';
import { ProcessService } from '../processes/process-service.js';
import { PortService } from '../ports/port-service.js';
import { buildApp } from '../http/build-app.js';
import type { HealthReport } from '../http/routes/service-routes.js';
import { WorkerMetrics } from '../metrics/worker-metrics.js';
import { RedisStore } from '../redis/redis-store.js';
import { dockerImageExists } from '../runtime/docker/docker-images.js';
import { DockerRuntime, type DockerSandboxLimits } from '../runtime/docker/docker-runtime.js';
import { RuntimeMonitor } from '../runtime/runtime-monitor.js';
import type { SandboxRuntime } from '../runtime/sandbox-runtime.js';
import { systemClock, type Clock } from '../sessions/clock.js';
import { SessionManager } from '../sessions/session-manager.js';
import { ContainerReconciler } from './container-reconciler.js';
import { planLeftovers } from './session-readoption.js';
import { WorkerRegistration } from './worker-registration.js';
import { TemplateMetrics } from '../templates/template-metrics.js';
import { TEMPLATE_CONTAINER_LABEL, TemplatePools } from '../templates/template-pools.js';
import { DEFAULT_TEMPLATE } from '../templates/template-spec.js';
import { workerTemplates } from '../templates/worker-templates.js';
import { closeWithGrace, listenAt } from '../http/server-lifecycle.js';
import { createEgressService } from '../network/create-egress-service.js';
import type { EgressService } from '../network/egress-service.js';

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

/** One worker: a Docker engine, its pools (one per template), its sessions and the HTTP API over them. */
export class Worker {
  private state: WorkerState = 'starting';
  private closing: Promise<void> | undefined;

  private constructor(
    readonly config: WorkerConfig,
    readonly app: FastifyInstance,
    readonly sessions: SessionManager,
    readonly pools: TemplatePools,
    private readonly runtime: SandboxRuntime,
    readonly log: Logger,
    private readonly monitor: RuntimeMonitor,
    readonly reconciler: ContainerReconciler,
    private readonly progress: (line: string) => void,
    /** Distributed mode only. */
    private readonly registration?: WorkerRegistration,
    private readonly store?: RedisStore,
    private readonly egress?: EgressService,
  ) {}

  /** Labels on every container this worker creates. */
  static labelsFor(workerId: string): Record<string, string> {
    return { 'sandpool.managed': 'true', 'sandpool.worker': workerId };
  }

  /**
   * Checks the engine, removes what an earlier run of this worker id left behind and builds the
   * app; starts no container. Call `listen()` next: it binds, then warms the pool.
   */
  static async create(config: WorkerConfig, deps: WorkerDependencies = {}): Promise<Worker> {
    const log =
      deps.log ??
      pino({ level: config.logLevel, redact: LOG_REDACTION }).child({
        workerId: config.workerId,
      });
    const store = config.redisUrl ? new RedisStore({ url: config.redisUrl, log }) : undefined;
    try {
      return await Worker.assemble(config, deps, log, store);
    } catch (error) {
      await store?.close().catch(() => undefined);
      throw error;
    }
  }

  private static async assemble(
    config: WorkerConfig,
    deps: WorkerDependencies,
    log: Logger,
    store: RedisStore | undefined,
  ): Promise<Worker> {
    checkBind(config);
    const progress = deps.onProgress ?? ((line: string) => log.info(line));
    const limits: DockerSandboxLimits = {
      image: config.image,
      memoryMb: config.memoryMb,
      cpus: config.cpus,
      pidsLimit: config.pidsLimit,
      network: config.network,
      homeSizeMb: config.homeSizeMb,
      tmpSizeMb: config.tmpSizeMb,
      ociRuntime: config.ociRuntime,
    };
    const runtime = deps.runtime ?? new DockerRuntime({ limits, log });
    await runtime.ping();
    const templates = workerTemplates(config);
    const labels = Worker.labelsFor(config.workerId);

    const clock = deps.clock ?? systemClock;
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
            poolSize: pools.idleCount,
            templates: pools.loads(),
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
      poolIdle: (): number => pools.idleCount,
      poolTarget: (): number => pools.targetSize,
      poolWaiting: (): number => pools.waitingCount,
      activeSessions: (): number => sessions.activeCount,
    });
    const monitor: RuntimeMonitor = new RuntimeMonitor({
      runtime,
      intervalMs: config.engineCheckIntervalMs,
      log,
      onRecovered: () => {
        void pools.resume();
        void sessions.reap();
      },
    });
    // One runtime per template image; an injected runtime (tests) serves every template.
    const pools: TemplatePools = await TemplatePools.create(
      {
        templates,
        runtimeFor: (template) =>
          deps.runtime ?? new DockerRuntime({ limits: { ...limits, image: template.image }, log }),
        imageExists: (image) => (deps.runtime ? Promise.resolve(true) : dockerImageExists(image)),
        workerLabels: labels,
        poolMin: config.poolMin,
        poolMax: config.poolMax,
        shrinkAfterMs: config.poolShrinkAfterMs,
        refillConcurrency: config.poolRefillConcurrency,
        checkIntervalMs: config.poolCheckIntervalMs,
        clock,
        log,
        metrics,
        templateMetrics: new TemplateMetrics(metrics.registry, () => pools.views()),
        activeSessions: (template) =>
          sessions.list().filter((session) => session.template === template).length,
      },
      progress,
    );
    const egress = createEgressService(config, runtime, labels, metrics.registry, log);
    const sessions: SessionManager = new SessionManager({
      workerId: config.workerId,
      runtime,
      pools,
      workerLabels: labels,
      maxSessions: config.maxSessions,
      defaultTtlSeconds: config.sessionTtlSeconds,
      maxTtlSeconds: config.maxSessionTtlSeconds,
      reapIntervalMs: config.reapIntervalMs,
      clock,
      log,
      metrics,
      journal: registration?.journal,
      egress,
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
        // Records written before templates existed name none; the container's label does.
        template: record.template ?? container.labels[TEMPLATE_CONTAINER_LABEL] ?? DEFAULT_TEMPLATE,
        createdAt: record.created_at,
        expiresAt: record.expires_at,
        env: record.env,
        metadata: record.metadata,
        ...(record.access_token ? { accessToken: record.access_token } : {}),
        ...(record.network ? { network: record.network } : {}),
      });
      if (record.network) {
        // Without its proxy the sandbox has no egress at all (it fails closed), so go on.
        await egress
          ?.adopt(sessionId, record.network)
          .catch((error: unknown) =>
            log.warn({ err: error, sessionId }, 'could not restore the egress proxy of a session'),
          );
      }
    }
    await egress
      ?.removeLeftovers(new Set(plan.adopt.map((a) => a.sessionId)))
      .catch((error: unknown) => log.warn({ err: error }, 'could not remove old session networks'));
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
    const code = new CodeService({
      sessions,
      defaultTimeoutMs: config.execTimeoutMs,
      maxTimeoutMs: config.maxExecTimeoutMs,
      outputLimitBytes: config.outputLimitBytes,
      // A figure is bigger than a line of text: one result may hold 4 times the exec cap.
      resultLimitBytes: 4 * config.outputLimitBytes,
    });

    const reconciler = new ContainerReconciler({
      runtime,
      workerId: config.workerId,
      labels,
      owned: () => [...pools.idleIds(), ...sessions.ownedContainerIds()],
      oldestStartBegan: () => earliest(pools.oldestStartBegan(), sessions.oldestStartBegan()),
      intervalMs: config.reconcileIntervalMs,
      graceMs: config.orphanGraceMs,
      clock,
      log,
      metrics,
      ...(store ? { registry: store, deadWorkerGraceMs: config.deadWorkerGraceMs } : {}),
      // A session network left by a removal that failed goes once its container is gone.
      ...(egress
        ? { afterRound: () => egress.removeLeftovers(new Set(sessions.list().map((s) => s.id))) }
        : {}),
    });

    const startedAt = Date.now();
    const health = async (): Promise<HealthReport> => {
      const report = {
        worker_id: config.workerId,
        pool_size: pools.idleCount,
        pool_target: pools.targetSize,
        pool_starting: pools.startingCount,
        pool_waiting: pools.waitingCount,
        pool_hits: pools.hits,
        pool_misses: pools.misses,
        pool_min: config.poolMin,
        pool_max: config.poolMax,
        active_sessions: sessions.activeCount,
        max_sessions: config.maxSessions,
        version: VERSION,
        uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
        ...(registration ? { registered: registration.registered } : {}),
        templates: pools.views(),
      };
      // The monitor's own check, now: /health and the refusal of new sessions never disagree
      // (a fresh ping of its own let /health say "down" while creates still took a dead container).
      await monitor.check();
      const engineDown = monitor.refusal();
      if (engineDown !== undefined) {
        return { status: 'unhealthy', reason: engineDown.message, ...report };
      }
      if (pools.served.length === 0) {
        return {
          status: 'unhealthy',
          reason:
            'No template image is built, so no session can start; run `npx sandpool template build --all` and restart.',
          ...report,
        };
      }
      return {
        status: 'healthy',
        ...report,
        ...(pools.idleCount < config.poolMin && pools.lastError
          ? { pool_error: pools.lastError }
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
      ports: new PortService({ sessions, clock, registry: metrics.registry }),
      sessions,
      templates: () => pools.views(),
      exec,
      code,
      files: new FileService(sessions),
      health,
      registry: metrics.registry,
      log,
      apiKey: config.apiKey,
      uploadLimitBytes: config.uploadLimitBytes,
      faces: config,
      egress,
      e2b: {
        resources: {
          cpuCount: Math.max(1, Math.ceil(config.cpus)),
          memoryMB: config.memoryMb,
          // What a sandbox can write: its tmpfs home and /tmp (the root is read-only).
          diskSizeMB: config.homeSizeMb + config.tmpSizeMb,
        },
      },
    });
    app.addHook('onClose', async () => processes.close());
    return new Worker(
      config,
      app,
      sessions,
      pools,
      runtime,
      log,
      monitor,
      reconciler,
      progress,
      registration,
      store,
      egress,
    );
  }

  /**
   * Binds first, then warms the pool, so a worker that cannot bind (the port is taken) never
   * starts a container; on any failure here everything started is removed before the error
   * propagates. Resolves to the URL clients use. Creates that arrive while the pool warms wait
   * for a container.
   */
  async listen(): Promise<string> {
    let url: string;
    try {
      url = (await listenAt(this.app, this.config.host, this.config.port)).origin;
    } catch (error) {
      await this.close().catch(() => undefined);
      throw error;
    }
    try {
      await this.warm();
    } catch (error) {
      await this.close().catch(() => undefined);
      throw error;
    }
    if (this.state !== 'starting') throw new Error('the worker was closed while it started');
    this.state = 'running';
    // A wildcard address is no address to reach: name the host instead (or --advertise-url).
    const reachable = ['0.0.0.0', '::'].includes(this.config.host)
      ? `http://${hostname()}:${new URL(url).port}`
      : url;
    this.registration?.start(this.config.advertiseUrl?.replace(/\/$/, '') ?? reachable);
    return url;
  }

  private async warm(): Promise<void> {
    this.sessions.start();
    this.monitor.start();
    await this.pools.warm(this.progress);
    this.reconciler.start();
  }

  /** Stops taking requests, then destroys every session and pooled container. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closing';
      await this.registration?.stop(); // Coordinators stop sending sessions here first.
      await closeWithGrace(this.app);
      await this.monitor.stop();
      await this.reconciler.stop();
      await this.sessions.close();
      await this.pools.close();
      await this.egress?.close();
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

/** The earlier of two optional instants. */
function earliest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  return b === undefined ? a : Math.min(a, b);
}

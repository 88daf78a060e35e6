import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { SandpoolError } from '../errors/sandpool-error.js';
import { SESSION_MAPPING_GRACE_MS, type RedisStore } from '../redis/redis-store.js';
import type { Clock } from '../sessions/clock.js';
import type { CoordinatorMetrics } from './coordinator-metrics.js';
import { rankForNewSession, type WorkerDirectory } from './worker-directory.js';
import {
  clusterTemplates,
  requestedTemplate,
  workersServing,
  type ClusterTemplateView,
} from '../templates/template-placement.js';
import { readResponse, type WorkerProxy, type WorkerUnreachableError } from './worker-proxy.js';

/** The worker a request goes to. */
export interface WorkerTarget {
  workerId: string;
  url: string;
}

/** A worker's answer, read whole (control calls are small). */
export interface BufferedAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface SessionRouterOptions {
  store: RedisStore;
  directory: WorkerDirectory;
  proxy: WorkerProxy;
  metrics: CoordinatorMetrics;
  clock: Clock;
  log: Logger;
  createTimeoutMs: number;
}

/** Largest control answer (session view, list) read from a worker. */
const CONTROL_ANSWER_LIMIT = 4 * 1024 * 1024;
/** Time a fan-out call (session list) may take per worker. */
const FAN_OUT_TIMEOUT_MS = 5000;

/**
 * Places new sessions on workers and finds the owner of existing ones. Everything it knows is
 * in Redis, so any number of coordinators give the same answers.
 */
export class SessionRouter {
  constructor(private readonly options: SessionRouterOptions) {}

  /** The owner of a session: 404 when unknown, 410 when its worker is gone, 503 without Redis. */
  async route(sessionId: string): Promise<WorkerTarget> {
    const route = await this.options.store.sessionRoute(sessionId);
    if (route === undefined) {
      throw new SandpoolError(
        'session_not_found',
        `No session ${sessionId}; it was closed, expired or never existed.`,
      );
    }
    if (route.heartbeat === undefined) throw this.lost(sessionId, route.workerId);
    return { workerId: route.workerId, url: route.heartbeat.url };
  }

  /**
   * What to answer when the owner broke off: 410 if its heartbeat lapsed meanwhile, else 503
   * (it may be restarting, and a restarted worker re-adopts its sessions).
   */
  async unreachable(
    sessionId: string,
    target: WorkerTarget,
    error: WorkerUnreachableError,
  ): Promise<SandpoolError> {
    this.options.metrics.workerErrors.inc({ worker: target.workerId });
    this.options.log.warn({ err: error, workerId: target.workerId }, 'worker did not answer');
    const stillThere = await this.options.directory.liveUrl(target.workerId).catch(() => 'unknown');
    if (stillThere === undefined) return this.lost(sessionId, target.workerId);
    return new SandpoolError(
      'runtime_unavailable',
      `Worker ${target.workerId} at ${target.url} owns session ${sessionId} but did not answer (${error.reason}); retry in a moment.`,
      1,
      { cause: error },
    );
  }

  /**
   * Offers the session to the best worker, then the next ones when a worker refuses (503) or
   * fails; a client error (4xx) is the same on every worker and is answered at once.
   */
  async create(path: string, body: Buffer, headers: OutgoingHttpHeaders): Promise<BufferedAnswer> {
    const { directory, proxy, metrics, log } = this.options;
    const known = await directory.list();
    const template = requestedTemplate(body);
    const serving = workersServing(known, template);
    if (serving.length === 0 && known.some((w) => w.healthy)) {
      const served = clusterTemplates(known).map((t) => t.name);
      throw new SandpoolError(
        'template_not_found',
        `No worker serves template "${template}"; the workers serve ${served.join(', ') || 'no template'} (GET /v1/templates). Start a worker with --templates ${template}=N.`,
      );
    }
    const candidates = rankForNewSession(serving);
    let retryAfter = 2;
    let tried = 0;
    for (const worker of candidates) {
      if (tried++ > 0) metrics.createFailovers.inc();
      let answer: BufferedAnswer;
      try {
        const response = await proxy.send({
          url: `${worker.url}${path}`,
          method: 'POST',
          headers,
          body,
          responseTimeoutMs: this.options.createTimeoutMs,
        });
        answer = {
          status: response.statusCode ?? 502,
          headers: response.headers,
          body: await readResponse(response, CONTROL_ANSWER_LIMIT),
        };
      } catch (error) {
        metrics.workerErrors.inc({ worker: worker.worker_id });
        log.warn({ err: error, workerId: worker.worker_id }, 'session create failed on a worker');
        continue;
      }
      if (answer.status === 201) {
        const placed = await this.remember(worker.worker_id, worker.url, answer, headers);
        if (placed) return answer;
        continue;
      }
      if (answer.status >= 500) {
        retryAfter = Math.max(retryAfter, Number(answer.headers['retry-after']) || 0);
        log.info({ workerId: worker.worker_id, status: answer.status }, 'worker refused a session');
        continue;
      }
      return answer;
    }
    metrics.capacityRejections.inc();
    const healthy = known.filter((w) => w.healthy).length;
    throw new SandpoolError(
      'capacity_exhausted',
      tried === 0
        ? `No worker can take a session now (${known.length} registered, ${healthy} with a live heartbeat, none below its session limit); retry later or add workers.`
        : `Every worker that could take a session refused or failed it (${tried} tried); retry later or add workers.`,
      Math.min(retryAfter, 30),
    );
  }

  /** The templates of every live worker, summed (a coordinator's `GET /v1/templates`). */
  async templates(): Promise<ClusterTemplateView[]> {
    return clusterTemplates(await this.options.directory.list());
  }

  /** Any worker with a live heartbeat (for what every worker answers alike: the API document). */
  async anyLiveWorker(): Promise<WorkerTarget> {
    const live = (await this.options.directory.list()).filter((w) => w.healthy);
    const worker = live[Math.floor(Math.random() * live.length)];
    if (worker === undefined) {
      throw new SandpoolError(
        'runtime_unavailable',
        'No worker has a live heartbeat; start workers with --redis.',
        2,
      );
    }
    return { workerId: worker.worker_id, url: worker.url };
  }

  /** After a keep-alive: the mapping lives as long as the session now does. */
  async extended(sessionId: string, target: WorkerTarget, view: Buffer): Promise<void> {
    const ttlMs = this.mappingTtlMs(view);
    if (ttlMs !== undefined)
      await this.options.store.refreshSession(sessionId, target.workerId, ttlMs);
  }

  /** After a delete (or a worker that no longer knows the session): drop the mapping. */
  async released(sessionId: string): Promise<void> {
    await this.options.store.releaseSession(sessionId);
  }

  /** `GET /v1/sessions` across every live worker; a worker that does not answer is left out. */
  async listAll(headers: OutgoingHttpHeaders): Promise<unknown[]> {
    const workers = (await this.options.directory.list()).filter((w) => w.healthy);
    const lists = await Promise.all(
      workers.map(async (worker) => {
        try {
          const response = await this.options.proxy.send({
            url: `${worker.url}/v1/sessions`,
            method: 'GET',
            headers,
            responseTimeoutMs: FAN_OUT_TIMEOUT_MS,
          });
          const body = await readResponse(response, CONTROL_ANSWER_LIMIT);
          if (response.statusCode !== 200) return [];
          return (JSON.parse(body.toString('utf8')) as { sessions?: unknown[] }).sessions ?? [];
        } catch (error) {
          this.options.metrics.workerErrors.inc({ worker: worker.worker_id });
          this.options.log.warn({ err: error, workerId: worker.worker_id }, 'session list failed');
          return [];
        }
      }),
    );
    return lists.flat();
  }

  /**
   * Checks the worker's answer names a session. The worker wrote the session → worker mapping
   * itself before answering; the coordinator only reads it.
   */
  private async remember(
    workerId: string,
    url: string,
    answer: BufferedAnswer,
    headers: OutgoingHttpHeaders,
  ): Promise<boolean> {
    let sessionId: string;
    try {
      sessionId = (JSON.parse(answer.body.toString('utf8')) as { session_id: string }).session_id;
    } catch {
      return false;
    }
    const route = await this.options.store.sessionRoute(sessionId).catch(() => undefined);
    if (route !== undefined && route.workerId !== workerId) {
      // The id maps to another worker (it cannot, the worker claims it NX): give this one up.
      await this.options.proxy
        .send({ url: `${url}/v1/sessions/${sessionId}`, method: 'DELETE', headers })
        .then((response) => response.resume())
        .catch(() => undefined);
      return false;
    }
    this.options.metrics.sessionsCreated.inc({ worker: workerId });
    return true;
  }

  private mappingTtlMs(view: Buffer): number | undefined {
    try {
      const { expires_at: expiresAt } = JSON.parse(view.toString('utf8')) as { expires_at: string };
      const ms = Date.parse(expiresAt) - this.options.clock.now();
      return Number.isFinite(ms) ? Math.max(ms, 1000) + SESSION_MAPPING_GRACE_MS : undefined;
    } catch {
      return undefined;
    }
  }

  private lost(sessionId: string, workerId: string): SandpoolError {
    this.options.metrics.sessionsLost.inc();
    return new SandpoolError(
      'session_lost',
      `Session ${sessionId} is lost: its worker ${workerId} is gone (no heartbeat within its TTL). Create a new session.`,
    );
  }
}

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Live numbers read when /metrics is scraped. */
export interface WorkerGaugeSource {
  poolIdle(): number;
  /** Warm containers the elastic pool aims for right now. */
  poolTarget(): number;
  /** Session creates waiting for a container to start. */
  poolWaiting(): number;
  activeSessions(): number;
}

const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** The worker's Prometheus metrics, in a registry of its own (two workers can share a process). */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly sessionCreateSeconds: Histogram;
  readonly execSeconds: Histogram;
  readonly containerStartSeconds: Histogram;
  readonly poolMisses: Counter;
  readonly poolHits: Counter;
  readonly orphansRemoved: Counter;
  readonly sessionsCreated: Counter;
  readonly sessionsEnded: Counter<'reason'>;
  readonly capacityRejections: Counter;

  constructor(source: WorkerGaugeSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'sandpool_process_' });
    this.sessionCreateSeconds = new Histogram({
      name: 'sandpool_session_create_seconds',
      help: 'Time to create a session',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.execSeconds = new Histogram({
      name: 'sandpool_exec_seconds',
      help: 'Time from exec request to exit',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.containerStartSeconds = new Histogram({
      name: 'sandpool_container_start_seconds',
      help: 'Time to create and start a sandbox container',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.poolMisses = new Counter({
      name: 'sandpool_pool_misses_total',
      help: 'Sessions that found the pool empty and waited for a container start',
      registers,
    });
    this.poolHits = new Counter({
      name: 'sandpool_pool_hits_total',
      help: 'Sessions that got a warm container at once',
      registers,
    });
    this.orphansRemoved = new Counter({
      name: 'sandpool_orphans_removed_total',
      help: 'Containers the reconciler removed: neither pooled nor owned by a live session',
      registers,
    });
    this.sessionsCreated = new Counter({
      name: 'sandpool_sessions_created_total',
      help: 'Sessions created',
      registers,
    });
    this.sessionsEnded = new Counter({
      name: 'sandpool_sessions_ended_total',
      help: 'Sessions ended, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.capacityRejections = new Counter({
      name: 'sandpool_capacity_rejections_total',
      help: 'Session creates refused at the session limit',
      registers,
    });
    new Gauge({
      name: 'sandpool_pool_size',
      help: 'Warm containers ready to be claimed',
      registers,
      collect() {
        this.set(source.poolIdle());
      },
    });
    new Gauge({
      name: 'sandpool_pool_target',
      help: 'Warm containers the elastic pool aims for (between --pool-min and --pool-max)',
      registers,
      collect() {
        this.set(source.poolTarget());
      },
    });
    new Gauge({
      name: 'sandpool_pool_waiting',
      help: 'Session creates waiting for a container to start',
      registers,
      collect() {
        this.set(source.poolWaiting());
      },
    });
    new Gauge({
      name: 'sandpool_active_sessions',
      help: 'Sessions open on this worker',
      registers,
      collect() {
        this.set(source.activeSessions());
      },
    });
  }
}

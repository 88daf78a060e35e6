import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30];

/** The coordinator's Prometheus metrics: routing counters, in a registry of its own. */
export class CoordinatorMetrics {
  readonly registry = new Registry();
  readonly routed: Counter<'worker'>;
  readonly sessionsCreated: Counter<'worker'>;
  readonly createFailovers: Counter;
  readonly capacityRejections: Counter;
  readonly sessionsLost: Counter;
  readonly workerErrors: Counter<'worker'>;
  readonly redisErrors: Counter;
  readonly upstreamSeconds: Histogram;

  /** `healthyWorkers` is read at scrape time; it may reject while Redis is down. */
  constructor(healthyWorkers: () => Promise<number>) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'sandpool_coordinator_process_' });
    this.routed = new Counter({
      name: 'sandpool_coordinator_requests_routed_total',
      help: 'Session-scoped requests proxied to a worker, by worker',
      labelNames: ['worker'],
      registers,
    });
    this.sessionsCreated = new Counter({
      name: 'sandpool_coordinator_sessions_created_total',
      help: 'Sessions placed on a worker, by worker',
      labelNames: ['worker'],
      registers,
    });
    this.createFailovers = new Counter({
      name: 'sandpool_coordinator_create_failovers_total',
      help: 'Session creates retried on the next worker after one refused or failed',
      registers,
    });
    this.capacityRejections = new Counter({
      name: 'sandpool_coordinator_capacity_rejections_total',
      help: 'Session creates refused because no worker could take them',
      registers,
    });
    this.sessionsLost = new Counter({
      name: 'sandpool_coordinator_sessions_lost_total',
      help: 'Requests answered 410 because the owning worker is gone',
      registers,
    });
    this.workerErrors = new Counter({
      name: 'sandpool_coordinator_worker_errors_total',
      help: 'Workers that could not be reached or broke a connection, by worker',
      labelNames: ['worker'],
      registers,
    });
    this.redisErrors = new Counter({
      name: 'sandpool_coordinator_redis_errors_total',
      help: 'Redis calls that failed',
      registers,
    });
    this.upstreamSeconds = new Histogram({
      name: 'sandpool_coordinator_upstream_seconds',
      help: 'Time from forwarding a request to the worker to its response head',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'sandpool_coordinator_healthy_workers',
      help: 'Workers with a live heartbeat',
      registers,
      async collect() {
        this.set(await healthyWorkers().catch(() => 0));
      },
    });
  }
}

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { TemplateView } from './template-pools.js';

const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/**
 * Per-template Prometheus metrics (label `template`), in the worker's registry beside its
 * worker-wide ones (`sandpool_pool_size` stays the total over every template).
 */
export class TemplateMetrics {
  readonly claimSeconds: Histogram<'template'>;
  readonly sessionsCreated: Counter<'template'>;
  readonly poolMisses: Counter<'template'>;

  /** `views` is read at scrape time. */
  constructor(registry: Registry, views: () => TemplateView[]) {
    const registers = [registry];
    this.claimSeconds = new Histogram({
      name: 'sandpool_template_claim_seconds',
      help: 'Time to get a sandbox of the template for a new session',
      labelNames: ['template'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.sessionsCreated = new Counter({
      name: 'sandpool_template_sessions_created_total',
      help: 'Sessions created, by template',
      labelNames: ['template'],
      registers,
    });
    this.poolMisses = new Counter({
      name: 'sandpool_template_pool_misses_total',
      help: 'Sessions that found their template’s pool empty and waited for a container start',
      labelNames: ['template'],
      registers,
    });
    const gauge = (name: string, help: string, pick: (view: TemplateView) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['template'],
        registers,
        collect() {
          this.reset();
          for (const view of views()) this.set({ template: view.name }, pick(view));
        },
      });
    gauge('sandpool_template_pool_size', 'Warm containers ready, by template', (v) => v.pool_size);
    gauge(
      'sandpool_template_pool_target',
      'Warm containers kept, by template',
      (v) => v.pool_target,
    );
    gauge(
      'sandpool_template_pool_starting',
      'Containers starting, by template',
      (v) => v.pool_starting,
    );
    gauge(
      'sandpool_template_active_sessions',
      'Sessions open, by template',
      (v) => v.active_sessions,
    );
    gauge(
      'sandpool_template_image_missing',
      '1 when the template is configured but its image is not on the engine',
      (v) => (v.status === 'image_missing' ? 1 : 0),
    );
  }
}

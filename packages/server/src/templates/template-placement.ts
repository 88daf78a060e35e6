import type { WorkerView } from '../coordinator/worker-directory.js';
import { DEFAULT_TEMPLATE } from './template-spec.js';

/**
 * The workers that serve `template`, each with the figures of that template's pool, so the
 * coordinator's ranking (most warm containers first) reads the right pool. A worker whose
 * heartbeat lists no templates predates them and serves only `base`.
 */
export function workersServing(workers: readonly WorkerView[], template: string): WorkerView[] {
  const serving: WorkerView[] = [];
  for (const worker of workers) {
    if (worker.templates === undefined) {
      if (template === DEFAULT_TEMPLATE) serving.push(worker);
      continue;
    }
    const load = worker.templates.find((t) => t.name === template);
    if (load !== undefined) serving.push({ ...worker, pool_size: load.pool_size });
  }
  return serving;
}

/** One template over every live worker, as a coordinator's `GET /v1/templates` shows it. */
export interface ClusterTemplateView {
  name: string;
  pool_size: number;
  active_sessions: number;
  /** Summed over the workers whose heartbeats carry them (the console's pool table). */
  pool_target?: number;
  pool_starting?: number;
  pool_hits?: number;
  pool_misses?: number;
  /** Ids of the live workers that serve it. */
  workers: string[];
}

const POOL_FIGURES = ['pool_target', 'pool_starting', 'pool_hits', 'pool_misses'] as const;

/** Sums each template's figures over the workers with a live heartbeat. */
export function clusterTemplates(workers: readonly WorkerView[]): ClusterTemplateView[] {
  const byName = new Map<string, ClusterTemplateView>();
  for (const worker of workers) {
    if (!worker.healthy) continue;
    const loads = worker.templates ?? [
      {
        name: DEFAULT_TEMPLATE,
        pool_size: worker.pool_size,
        active_sessions: worker.active_sessions,
      },
    ];
    for (const load of loads) {
      const view = byName.get(load.name) ?? {
        name: load.name,
        pool_size: 0,
        active_sessions: 0,
        workers: [],
      };
      view.pool_size += load.pool_size;
      view.active_sessions += load.active_sessions;
      for (const figure of POOL_FIGURES) {
        const value = load[figure];
        if (typeof value === 'number') view[figure] = (view[figure] ?? 0) + value;
      }
      view.workers.push(worker.worker_id);
      byName.set(load.name, view);
    }
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The template a create body asks for: `base` when the body names none. A body that is not JSON
 * (or whose template is no string) is left to the worker's schema to refuse.
 */
export function requestedTemplate(body: Buffer): string {
  if (body.length === 0) return DEFAULT_TEMPLATE;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      const template = (parsed as { template?: unknown }).template;
      if (typeof template === 'string') return template;
    }
  } catch {
    // The worker answers 400 for it.
  }
  return DEFAULT_TEMPLATE;
}

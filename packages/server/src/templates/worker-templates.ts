import type { WorkerConfig } from '../config/worker-config.js';
import { defaultTemplatesSpec, parseTemplatesSpec, type TemplateSpec } from './template-spec.js';

/**
 * The templates a worker pools: `--templates`, or `base` at `--pool-size` from `--image` plus one
 * warm code interpreter. Read when the worker starts, so a test may set poolSize after loading.
 */
export function workerTemplates(
  config: Pick<WorkerConfig, 'templates' | 'poolSize' | 'image' | 'poolMax'>,
): TemplateSpec[] {
  return parseTemplatesSpec(config.templates ?? defaultTemplatesSpec(config.poolSize), {
    basePoolSize: config.poolSize,
    baseImage: config.image,
    maxPoolSize: config.poolMax,
  });
}

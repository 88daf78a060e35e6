import { randomBytes } from 'node:crypto';
import {
  loadWorkerConfig,
  type WorkerConfig,
} from '../../packages/server/src/config/worker-config.js';
import { Worker } from '../../packages/server/src/worker/worker.js';

export interface TestWorker {
  url: string;
  workerId: string;
  apiKey?: string;
  worker: Worker;
  close(): Promise<void>;
}

/**
 * Starts an in-process worker on a free loopback port against the real Docker engine, with a
 * small pool and a unique worker id so test files never touch each other's containers.
 */
export async function startWorker(overrides: Partial<WorkerConfig> = {}): Promise<TestWorker> {
  const config: WorkerConfig = {
    ...loadWorkerConfig(
      {},
      {
        SANDPOOL_IMAGE: process.env.SANDPOOL_IMAGE,
        // Only `base` (sized by poolSize below) unless a test asks for more templates.
        SANDPOOL_TEMPLATES: process.env.SANDPOOL_TEMPLATES ?? 'base',
      },
    ),
    port: 0,
    workerId: `test-${randomBytes(4).toString('hex')}`,
    poolSize: 2,
    logLevel: process.env.SANDPOOL_TEST_LOG_LEVEL ?? 'silent',
    ...overrides,
  };
  const worker = await Worker.create(config, { onProgress: () => undefined });
  const url = await worker.listen();
  return {
    url,
    workerId: config.workerId,
    apiKey: config.apiKey,
    worker,
    close: () => worker.close(),
  };
}

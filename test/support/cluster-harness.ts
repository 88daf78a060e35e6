import { loadCoordinatorConfig } from '../../packages/server/src/config/coordinator-config.js';
import type { WorkerConfig } from '../../packages/server/src/config/worker-config.js';
import { Coordinator } from '../../packages/server/src/coordinator/coordinator.js';
import { TestRedis } from './redis-server.js';
import { until } from './until.js';
import { startWorker, type TestWorker } from './worker-harness.js';

export interface TestCluster {
  redis: TestRedis;
  worker: TestWorker;
  coordinator: Coordinator;
  /** The coordinator's URL. */
  url: string;
  close(): Promise<void>;
}

/**
 * Redis, one in-process worker registered with it, and a coordinator in front, returned once the
 * coordinator sees the worker healthy. Both take `apiKey` when given.
 */
export async function startCluster(
  workerOverrides: Partial<WorkerConfig> = {},
  apiKey?: string,
): Promise<TestCluster> {
  const redis = await TestRedis.start();
  const worker = await startWorker({
    redisUrl: redis.url,
    heartbeatIntervalMs: 500,
    apiKey,
    ...workerOverrides,
  });
  const coordinator = await Coordinator.create({
    ...loadCoordinatorConfig({}, {}),
    port: 0,
    redisUrl: redis.url,
    apiKey,
    logLevel: process.env.SANDPOOL_TEST_LOG_LEVEL ?? 'silent',
  });
  const url = await coordinator.listen();
  await until(
    async () => {
      const health = (await (await fetch(`${url}/health`)).json()) as {
        workers?: { healthy: boolean }[];
      };
      return (health.workers ?? []).some((w) => w.healthy);
    },
    15_000,
    'the worker registered with the coordinator',
  );
  return {
    redis,
    worker,
    coordinator,
    url,
    close: async () => {
      await coordinator.close();
      await worker.close();
      await redis.stop();
    },
  };
}

import { randomBytes } from 'node:crypto';
import { SandpoolProcess } from '../test/support/sandpool-process.js';
import { TestRedis } from '../test/support/redis-server.js';

/** Redis, one worker and one coordinator as processes, with a session made through the coordinator. */
export interface BenchCluster {
  worker: SandpoolProcess;
  coordinator: SandpoolProcess;
  /** `/v1/sessions/{id}` of the session, on either URL. */
  sessionPath: string;
  stop: () => Promise<void>;
}

/** Starts the cluster the latency benches measure through; `name` goes into the worker id. */
export async function startBenchCluster(name: string): Promise<BenchCluster> {
  const redis = await TestRedis.start();
  const workerId = `bench-${name}-${randomBytes(3).toString('hex')}`;
  const worker = await SandpoolProcess.start(
    ['serve', '--port', '0', '--pool-size', '1', '--worker-id', workerId, '--redis', redis.url],
    { SANDPOOL_LOG_LEVEL: 'warn' },
  );
  const coordinator = await SandpoolProcess.start(
    ['coordinator', '--port', '0', '--redis', redis.url],
    { SANDPOOL_LOG_LEVEL: 'warn' },
  );
  const stop = async (): Promise<void> => {
    await coordinator.stop('SIGTERM');
    await worker.stop('SIGTERM');
    await redis.stop();
  };
  try {
    // The worker shows up in Redis with its first heartbeat.
    let session: { session_id: string } | undefined;
    for (let i = 0; i < 100 && !session; i++) {
      const answer = await fetch(`${coordinator.url}/v1/sessions`, { method: 'POST' });
      if (answer.status === 201) session = (await answer.json()) as { session_id: string };
      else await new Promise((r) => setTimeout(r, 100));
    }
    if (!session) throw new Error('the coordinator could not create a session');
    return { worker, coordinator, sessionPath: `/v1/sessions/${session.session_id}`, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

import { readdir } from 'node:fs/promises';
import type { Sandbox } from 'e2b';
import { docker } from '../support/docker.js';
import { until } from '../support/until.js';
import type { TestWorker } from '../support/worker-harness.js';

/**
 * Points the published E2B SDKs at a sandpool server the way a user does: the three variables
 * the start-up banner prints, and nothing else.
 */
export function useE2bServer(serverUrl: string, apiKey: string): void {
  process.env.E2B_API_URL = `${serverUrl}/e2b`;
  process.env.E2B_SANDBOX_URL = `${serverUrl}/e2b/sandbox`;
  process.env.E2B_API_KEY = apiKey;
}

/** Polls `check` (sync or async) until it holds, for up to 15 s. */
export const eventually = (check: () => boolean | Promise<boolean>, what: string) =>
  until(async () => check(), 15_000, what);

/** How many descriptors the agent (pid 1) of a session's container holds, read from the host. */
export async function agentDescriptorCount(
  worker: TestWorker,
  sessionId: string,
): Promise<() => Promise<number>> {
  const containerId = worker.worker.sessions.get(sessionId).sandbox.id;
  const hostPid = (await docker('inspect', '-f', '{{.State.Pid}}', containerId)).trim();
  return async () => (await readdir(`/proc/${hostPid}/fd`)).length;
}

/**
 * A background ticker in `dir`'s sandbox and `count` watches of `dir` and readers of the ticker's
 * output, each holding something in the agent, for the tests that drop them.
 */
export async function openWatchesAndFollowers(sandbox: Sandbox, dir: string, count: number) {
  await sandbox.files.makeDir(dir);
  const ticker = await sandbox.commands.run('while :; do echo tick; sleep 0.05; done', {
    background: true,
    timeoutMs: 0,
  });
  await ticker.disconnect();
  const open = async () => {
    const closers: (() => Promise<unknown>)[] = [];
    for (let i = 0; i < count; i++) {
      const watch = await sandbox.files.watchDir(dir, () => undefined);
      const follower = await sandbox.commands.connect(ticker.pid, { onStdout: () => undefined });
      closers.push(
        () => watch.stop(),
        () => follower.disconnect(),
      );
    }
    return async () => {
      for (const close of closers) await close();
    };
  };
  return { ticker, open };
}

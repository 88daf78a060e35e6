import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Sandbox, SandpoolClient, type HealthStatus } from '@sandpool/client';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { containersOf } from '../support/docker.js';
import { until } from '../support/until.js';

/**
 * Sustained create → exec → delete through the SDK while the client gives up at random moments:
 * it aborts the create, the exec or the delete. Whatever it abandons, the worker must end up with
 * no session it cannot account for, no container beyond its pool, and keep serving.
 *
 * SANDPOOL_CHURN_CYCLES sets the number of cycles (default 200, about a minute here; the
 * acceptance run of issue 10 is 1000), SANDPOOL_CHURN_SEED replays a run.
 */

const CYCLES = Number(process.env.SANDPOOL_CHURN_CYCLES ?? 200);
const CONCURRENCY = 4; // clients at once: sized for a 2-core machine
const SEED = Number(process.env.SANDPOOL_CHURN_SEED ?? randomBytes(4).readUInt32LE());

type Kind = 'clean' | 'abort-create' | 'abort-exec' | 'abort-delete';
const KINDS: Kind[] = ['clean', 'abort-create', 'abort-exec', 'abort-delete'];

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * An abort signal that fires `delayMs` from now; `cancel` stops it once the call is over,
 * `firedAtMs` says when it fired (epoch ms, as the worker's clock in this process).
 */
function abortAfter(delayMs: number): {
  signal: AbortSignal;
  cancel: () => void;
  firedAtMs: () => number | undefined;
} {
  const controller = new AbortController();
  let firedAtMs: number | undefined;
  const timer = setTimeout(() => {
    firedAtMs = Date.now();
    controller.abort();
  }, delayMs);
  return {
    signal: controller.signal,
    cancel: () => clearTimeout(timer),
    firedAtMs: () => firedAtMs,
  };
}

/**
 * How late after a client's abort the worker may still finish a create without seeing the
 * disconnect: the close reaches it a turn or two of the event loop (which this test shares with
 * it) later. This much beyond two of the slowest turns measured in the run.
 */
const DISCONNECT_SLACK_MS = 50;

/** The SDK rethrows the caller's own abort reason: a DOMException named AbortError here. */
function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}

describe('churn with random client aborts', () => {
  let w: TestWorker;
  let client: SandpoolClient;
  const runId = randomBytes(4).toString('hex');

  before(async () => {
    // Room beyond the 4 clients: a create aborted after its answer was sent leaves a session
    // until its TTL (about 1 in 80 cycles here), and 1000 cycles made 16 of them.
    w = await startWorker({ poolSize: 4, maxSessions: 64 });
    client = new SandpoolClient({ url: w.url });
  });
  after(async () => {
    await w?.close();
    assert.deepEqual(await containersOf(w.workerId), [], 'containers left after close');
  });

  test(`${CYCLES} create → exec → delete cycles, aborted at random, leave nothing behind`, async (t) => {
    const random = seeded(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
    const counts = new Map<string, number>();
    const count = (what: string) => counts.set(what, (counts.get(what) ?? 0) + 1);
    const abortedCreates = new Map<string, number>(); // cycle -> when the client aborted
    const failures: string[] = [];

    // Draw every cycle's plan up front, so the seed alone fixes the run whatever the timing.
    const plans = Array.from({ length: CYCLES }, (_, i) => ({
      cycle: String(i),
      kind: pick(KINDS),
      abortMs: Math.floor(random() * 250),
      streaming: random() < 0.5,
      command: pick(['echo hi', 'echo start; sleep 0.2; echo end', 'python3 -c "print(6 * 7)"']),
    }));

    const runCycle = async (plan: (typeof plans)[number]): Promise<void> => {
      const { cycle, kind } = plan;
      const create = kind === 'abort-create' ? abortAfter(plan.abortMs) : undefined;
      let sandbox: Sandbox;
      try {
        sandbox = await Sandbox.create({
          url: w.url,
          metadata: { churn: runId, cycle },
          signal: create?.signal,
        });
      } catch (error) {
        if (!isAbort(error)) throw error;
        abortedCreates.set(cycle, create?.firedAtMs() ?? Date.now());
        count('create aborted');
        return;
      } finally {
        create?.cancel();
      }

      const execAbort = kind === 'abort-exec' ? abortAfter(plan.abortMs) : undefined;
      try {
        const result = await sandbox.exec(plan.command, {
          signal: execAbort?.signal,
          onStdout: plan.streaming ? () => undefined : undefined,
        });
        assert.equal(result.exitCode, 0, `cycle ${cycle}: ${JSON.stringify(result)}`);
        if (kind === 'abort-exec') count('exec finished before its abort');
      } catch (error) {
        if (!isAbort(error)) throw error;
        count('exec aborted');
        // The session outlives an abandoned command.
        const again = await sandbox.exec('echo ok');
        assert.equal(again.stdout, 'ok\n', `cycle ${cycle}: exec after an aborted exec`);
      } finally {
        execAbort?.cancel();
      }

      if (kind === 'abort-delete') {
        const del = abortAfter(plan.abortMs);
        try {
          await client.deleteSession(sandbox.sessionId, { signal: del.signal });
          count('delete finished before its abort');
        } catch (error) {
          if (!isAbort(error)) throw error;
          count('delete aborted');
        } finally {
          del.cancel();
        }
      }
      // A client that gave up on its delete tries again, as a real one would; close() is quiet
      // when the first one did go through.
      await sandbox.close();
      if (kind !== 'abort-delete') count(`${kind} completed`);
    };

    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < plans.length) {
          const plan = plans[next++];
          await runCycle(plan).catch((error: unknown) =>
            failures.push(`cycle ${plan.cycle} (${plan.kind}): ${String(error)}`),
          );
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    loopDelay.disable();
    const slowestTurnMs = Math.round(loopDelay.max / 1e6);
    const seenWithinMs = DISCONNECT_SLACK_MS + 2 * slowestTurnMs;
    t.diagnostic(
      `${CYCLES} cycles in ${seconds.toFixed(1)} s (${(CYCLES / seconds).toFixed(1)}/s), ` +
        `concurrency ${CONCURRENCY}, seed ${SEED}`,
    );
    t.diagnostic(JSON.stringify(Object.fromEntries([...counts].sort())));
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} cycles failed`);
    // The draw covered each way of giving up, or the run tested less than it says.
    for (const what of ['create aborted', 'exec aborted', 'delete aborted']) {
      assert.ok((counts.get(what) ?? 0) > 0 || CYCLES < 40, `no cycle had its ${what}`);
    }

    // A create aborted after the worker sent its answer leaves a session the client never
    // learned the id of: nobody can tell that apart from a slow client, so it lives to its TTL.
    // A session created once the client had already gone is a leak (the worker must end it), and
    // so is any session a cycle closed.
    const open = (await client.listSessions()).filter((s) => s.metadata.churn === runId);
    let latestMs = 0;
    const leaked = open.flatMap((s) => {
      const cycle = s.metadata.cycle ?? '';
      const abortedAtMs = abortedCreates.get(cycle);
      if (abortedAtMs === undefined) return [`cycle ${cycle}: closed by its client`];
      const lateMs = s.createdAt.getTime() - abortedAtMs;
      latestMs = Math.max(latestMs, lateMs);
      return lateMs > seenWithinMs
        ? [`cycle ${cycle}: created ${lateMs} ms after its client aborted`]
        : [];
    });
    assert.deepEqual(leaked, [], 'sessions left open');
    t.diagnostic(
      `${open.length} of ${abortedCreates.size} aborted creates were answered before the abort ` +
        `(created at most ${latestMs} ms after the abort, allowed ${seenWithinMs} ms as the ` +
        `slowest event-loop turn was ${slowestTurnMs} ms; closed now, as their TTL would)`,
    );
    for (const s of open) await client.deleteSession(s.sessionId);

    // Every container of the worker is now a warm one: none was left by an abandoned call.
    let health: HealthStatus | undefined;
    let containers: string[] = [];
    await until(
      async () => {
        health = await client.health();
        containers = await containersOf(w.workerId);
        return (
          health.active_sessions === 0 &&
          health.pool_starting === 0 &&
          containers.length === health.pool_size
        );
      },
      60_000,
      'containers back to the warm pool',
    ).catch((error: unknown) => {
      throw new Error(
        `${String(error)}: ${containers.length} containers, health ${JSON.stringify(health)}`,
      );
    });
    assert.equal(health?.status, 'healthy');

    // And it still serves.
    await using sandbox = await Sandbox.create({ url: w.url });
    assert.equal((await sandbox.exec('echo alive')).stdout, 'alive\n');
  });
});

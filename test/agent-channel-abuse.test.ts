import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadWorkerConfig } from '../packages/server/src/config/worker-config.js';
import type { AgentLimits } from '../packages/server/src/runtime/agent/agent-client.js';
import { DockerRuntime } from '../packages/server/src/runtime/docker/docker-runtime.js';
import { Worker } from '../packages/server/src/worker/worker.js';
import { call, createSession, exec } from './support/http.js';
import { containersOf, docker } from './support/docker.js';

/**
 * Item 6 of issue 10 through the public API: while four sandboxes trickle large frames into their
 * agents' channel in 64-byte writes, another session's `echo` stays fast and the worker's event
 * loop keeps its pace. Since sandbox code can no longer open the agent's descriptors under runc
 * (the agent is pid 1 and non-dumpable), the trickle comes from a hostile agent image built here:
 * the real agent behind a relay that forges the frames (see fixtures/hostile_agent.py).
 */

const BASE_IMAGE = process.env.SANDPOOL_IMAGE ?? 'sandpool/sandbox:latest';
const HOSTILE_IMAGE = `sandpool/sandbox-hostile:${randomBytes(4).toString('hex')}`;
const MEASURE_MS = 6000;
const TRICKLERS = 4;

async function buildHostileImage(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sandpool-hostile-'));
  try {
    await copyFile(
      fileURLToPath(new URL('./fixtures/hostile_agent.py', import.meta.url)),
      path.join(dir, 'hostile_agent.py'),
    );
    await writeFile(
      path.join(dir, 'Dockerfile'),
      [
        `FROM ${BASE_IMAGE}`,
        'COPY hostile_agent.py /opt/sandpool/hostile_agent.py',
        'CMD ["python3", "-I", "-S", "-B", "/opt/sandpool/hostile_agent.py"]',
      ].join('\n'),
    );
    await docker('build', '-q', '-t', HOSTILE_IMAGE, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface Started {
  url: string;
  workerId: string;
  worker: Worker;
  logs: string[];
}

/** An in-process worker on the hostile image, its warnings captured, the agent limits given. */
async function startHostileWorker(agentLimits?: Partial<AgentLimits>): Promise<Started> {
  const config = {
    ...loadWorkerConfig({}, { SANDPOOL_IMAGE: HOSTILE_IMAGE }),
    port: 0,
    workerId: `test-${randomBytes(4).toString('hex')}`,
    poolSize: TRICKLERS + 1,
    maxSessions: TRICKLERS + 2,
  };
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const log = pino({ level: 'warn' }, sink);
  const runtime = new DockerRuntime({
    limits: {
      image: config.image,
      memoryMb: config.memoryMb,
      cpus: config.cpus,
      pidsLimit: config.pidsLimit,
      network: config.network,
      homeSizeMb: config.homeSizeMb,
      tmpSizeMb: config.tmpSizeMb,
    },
    log,
    agentLimits,
  });
  const worker = await Worker.create(config, { log, runtime, onProgress: () => undefined });
  return { url: await worker.listen(), workerId: config.workerId, worker, logs };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Echo latencies of a calm session while `attack` runs, and the event loop's delay meanwhile. */
async function measure(url: string, calm: string, attack: () => Promise<void>) {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const latencies: number[] = [];
  const started = performance.now();
  const echoes = (async () => {
    while (performance.now() - started < MEASURE_MS) {
      const t = performance.now();
      const r = await exec(url, calm, { command: 'echo calm' });
      assert.equal(r.stdout, 'calm\n');
      latencies.push(performance.now() - t);
    }
  })();
  await attack();
  await echoes;
  loop.disable();
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    echoes: sorted.length,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    loopDelayMeanMs: loop.mean / 1e6,
    loopDelayP99Ms: loop.percentile(99) / 1e6,
    loopDelayMaxMs: loop.max / 1e6,
  };
}

/** The same sandboxes write the same kind of 64-byte pieces to /dev/null instead: the baseline. */
async function baseline(url: string, calm: string, busy: string[]) {
  return measure(url, calm, async () => {
    await Promise.all(
      busy.map((id) =>
        exec(url, id, {
          command: `timeout ${MEASURE_MS / 1000} dd if=/dev/zero of=/dev/null bs=64 2>/dev/null; true`,
          timeout_ms: MEASURE_MS + 5000,
        }),
      ),
    );
  });
}

function figures(what: string, m: Awaited<ReturnType<typeof measure>>): string {
  return (
    `${what}: ${m.echoes} echo execs in ${MEASURE_MS / 1000} s, p50 ${m.p50Ms.toFixed(1)} ms, ` +
    `p90 ${m.p90Ms.toFixed(1)} ms; worker event-loop delay mean ${m.loopDelayMeanMs.toFixed(1)} ms, ` +
    `p99 ${m.loopDelayP99Ms.toFixed(1)} ms, max ${m.loopDelayMaxMs.toFixed(1)} ms`
  );
}

/**
 * The calm session stays about as fast as in the baseline measured just before (the machine is
 * shared, so no fixed bound). The defect this guards against was a p90 of 1.9 s and a starved
 * event loop: three times the baseline plus 150 ms keeps noise out and that defect in.
 */
function assertNearBaseline(
  m: { p90Ms: number; loopDelayP99Ms: number },
  base: { p90Ms: number; loopDelayP99Ms: number },
): void {
  assert.ok(m.p90Ms < 3 * base.p90Ms + 150, `echo p90 ${m.p90Ms} ms against ${base.p90Ms} ms`);
  assert.ok(
    m.loopDelayP99Ms < 3 * base.loopDelayP99Ms + 150,
    `event-loop delay p99 ${m.loopDelayP99Ms} ms against ${base.loopDelayP99Ms} ms`,
  );
}

describe('sandboxes that trickle frames into their agent channel', () => {
  before(buildHostileImage);
  after(async () => {
    await docker('rmi', '-f', HOSTILE_IMAGE).catch(() => undefined);
  });

  test('the offending sessions end (410, logged with why); another session stays fast', async () => {
    const w = await startHostileWorker();
    try {
      const calm = await createSession(w.url);
      const tricklers = await Promise.all(
        Array.from({ length: TRICKLERS }, () => createSession(w.url)),
      );
      const base = await baseline(w.url, calm, tricklers);
      console.log(figures('baseline, 64-byte writes to /dev/null', base));
      const ended: number[] = [];
      const m = await measure(w.url, calm, async () => {
        const start = performance.now();
        await Promise.all(
          tricklers.map(async (id) => {
            await exec(w.url, id, { command: 'touch /tmp/trickle-now' });
            for (;;) {
              const r = await call<{ error?: { code: string } }>(
                w.url,
                'POST',
                `/v1/sessions/${id}/exec`,
                { command: 'true' },
              );
              if (r.status === 410) {
                assert.equal(r.body.error?.code, 'session_lost');
                ended.push(performance.now() - start);
                return;
              }
              assert.equal(r.status, 200);
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
          }),
        );
      });
      console.log(figures('trickle, sessions ended', m));
      console.log(`tricklers answered 410 after ${ended.map((t) => t.toFixed(0)).join(', ')} ms`);
      assert.equal(ended.length, TRICKLERS);
      const why = w.logs.filter((line) => /agent channel closed/.test(line));
      assert.ok(
        why.some((line) => /trickled in \d+ pieces/.test(line)),
        `no log line says why: ${w.logs.join('')}`,
      );
      assertNearBaseline(m, base);
      assert.equal((await call(w.url, 'GET', '/health')).status, 200);
    } finally {
      await w.worker.close();
    }
    assert.deepEqual(await containersOf(w.workerId), [], 'containers leaked');
  });

  test('with the trickle rule off, linear decoding and the budgets alone keep another session fast', async () => {
    // Sustained: each hostile agent forges 1 MiB frames in 64-byte writes, one after another.
    const w = await startHostileWorker({ trickleChunks: Number.POSITIVE_INFINITY });
    try {
      const calm = await createSession(w.url);
      const tricklers = await Promise.all(
        Array.from({ length: TRICKLERS }, () => createSession(w.url)),
      );
      const base = await baseline(w.url, calm, tricklers);
      console.log(figures('baseline, 64-byte writes to /dev/null', base));
      const m = await measure(w.url, calm, async () => {
        await Promise.all(
          tricklers.map((id) => exec(w.url, id, { command: 'touch /tmp/trickle-now' })),
        );
      });
      console.log(figures('sustained trickle, rule off', m));
      assertNearBaseline(m, base);
      assert.equal((await call(w.url, 'GET', '/health')).status, 200);
    } finally {
      await w.worker.close();
    }
    assert.deepEqual(await containersOf(w.workerId), [], 'containers leaked');
  });
});

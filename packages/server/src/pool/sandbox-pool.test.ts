import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { WorkerMetrics } from '../metrics/worker-metrics.js';
import { ManualClock, MemoryRuntime } from '../testing/memory-runtime.js';
import { SandboxPool } from './sandbox-pool.js';

const log = pino({ level: 'silent' });

function makePool(runtime: MemoryRuntime, clock: ManualClock, size = 2, max = 6): SandboxPool {
  const pool: SandboxPool = new SandboxPool({
    runtime,
    labels: { 'sandpool.worker': 'unit' },
    size,
    min: Math.min(1, max),
    max,
    shrinkAfterMs: 10_000,
    refillConcurrency: 2,
    checkIntervalMs: 3_600_000, // rounds are run by hand
    clock,
    log,
    metrics: new WorkerMetrics({
      poolIdle: () => pool.idleCount,
      poolTarget: () => pool.targetSize,
      poolWaiting: () => pool.waitingCount,
      activeSessions: () => 0,
    }),
  });
  return pool;
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('an empty pool queues claims and serves them in order as containers come up', async () => {
  const runtime = new MemoryRuntime();
  const clock = new ManualClock();
  const pool = makePool(runtime, clock);
  await pool.warm();
  assert.equal(pool.idleCount, 2);
  runtime.autoStart = false;
  const first = await pool.claim();
  const second = await pool.claim();
  assert.ok(first.fromPool && second.fromPool);
  await settle();
  const order: string[] = [];
  const third = pool.claim().then((c) => order.push(`third:${c.sandbox.id}`));
  const fourth = pool.claim().then((c) => order.push(`fourth:${c.sandbox.id}`));
  assert.equal(pool.waitingCount, 2);
  assert.equal(pool.misses, 2);
  assert.ok(pool.startingCount <= 2, 'never more starts than the refill concurrency');
  runtime.finishStarts(1);
  await settle();
  runtime.finishStarts(1);
  await Promise.all([third, fourth]);
  assert.deepEqual(
    order.map((o) => o.split(':')[0]),
    ['third', 'fourth'],
  );
  runtime.autoStart = true;
  runtime.finishStarts();
  await pool.close();
  assert.equal(runtime.boxes.size, 4, 'the four claimed boxes are the callers’; nothing else left');
});

test('misses grow the target toward max; a calm period shrinks it back and removes the surplus', async () => {
  const runtime = new MemoryRuntime();
  const clock = new ManualClock();
  const pool = makePool(runtime, clock, 2, 6);
  await pool.warm();
  runtime.autoStart = false;
  await pool.claim();
  await pool.claim();
  const waiting = Array.from({ length: 4 }, () => pool.claim());
  assert.equal(pool.hits, 2);
  assert.equal(pool.misses, 4);
  assert.equal(pool.targetSize, 6);
  runtime.autoStart = true;
  while (runtime.pending.length > 0) {
    runtime.finishStarts();
    await settle();
  }
  await Promise.all(waiting);
  await settle();
  await settle();
  assert.equal(pool.idleCount, 6, 'refilled to the grown target');
  clock.advance(10_000);
  await pool.runCheck();
  assert.equal(pool.targetSize, 4);
  assert.equal(pool.idleCount, 4, 'the surplus above the target is removed');
  clock.advance(10_000);
  await pool.runCheck();
  clock.advance(10_000);
  await pool.runCheck();
  assert.equal(pool.targetSize, 2, 'back at --pool-size, not below');
  assert.equal(pool.idleCount, 2);
  await pool.close();
});

test('the idle check never destroys a container a claim took while it was checking', async () => {
  const runtime = new MemoryRuntime();
  const clock = new ManualClock();
  const pool = makePool(runtime, clock, 1, 1);
  await pool.warm();
  const [box] = [...runtime.boxes.keys()];
  assert.ok(box);
  runtime.boxes.get(box)!.running = false; // it looks dead to isAlive()
  const check = pool.runCheck(); // awaits isAlive() of the box...
  const claimed = await pool.claim(); // ...while a session takes it
  await check;
  assert.equal(claimed.sandbox.id, box);
  assert.ok(runtime.boxes.has(box), 'the claimed box was not destroyed by the check');
  await pool.close();
});

test('failed starts answer the waiting claims instead of leaving them hanging', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const runtime = new MemoryRuntime();
  const clock = new ManualClock();
  const pool = makePool(runtime, clock, 0, 0);
  await pool.warm();
  runtime.autoStart = false;
  // A failed start is retried for the waiting claim after a pause...
  const claim = pool.claim();
  await settle();
  assert.equal(runtime.pending.length, 1, 'one start for the one waiting claim');
  runtime.failStarts();
  await settle();
  t.mock.timers.tick(500);
  await settle();
  assert.equal(runtime.pending.length, 1, 'retried after the back-off');
  runtime.failStarts();
  await settle();
  t.mock.timers.tick(1000);
  await settle();
  assert.equal(pool.waitingCount, 1, 'still waiting after two failures');
  // ...and after the third failure in a row the claim hears why, as a 503 of the engine.
  runtime.failStarts();
  await assert.rejects(claim, (error: Error & { code?: string }) => {
    assert.equal(error.code, 'runtime_unavailable');
    assert.match(error.message, /engine said no/);
    return true;
  });
  // During the back-off a new claim is answered at once.
  await assert.rejects(pool.claim(), /No sandbox can be started right now/);
  await pool.close();
});

test('close answers waiting claims and leaves no container', async () => {
  const runtime = new MemoryRuntime();
  const clock = new ManualClock();
  const pool = makePool(runtime, clock, 1, 1);
  await pool.warm();
  await pool.claim();
  runtime.autoStart = false;
  const waiting = pool.claim();
  const closing = pool.close();
  await assert.rejects(waiting, /shutting down/);
  runtime.finishStarts();
  await closing;
  assert.equal(runtime.boxes.size, 1, 'only the claimed box is left (its session removes it)');
});

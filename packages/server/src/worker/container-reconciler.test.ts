import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { WorkerEntry } from '../redis/redis-store.js';
import { ManualClock, MemoryRuntime } from '../testing/memory-runtime.js';
import { ContainerReconciler } from './container-reconciler.js';

const log = pino({ level: 'silent' });
const mine = { 'sandpool.managed': 'true', 'sandpool.worker': 'w1' };

function counter(): { inc(): void; value: number } {
  return {
    value: 0,
    inc() {
      this.value++;
    },
  };
}

test('removes unowned containers of this worker only after the grace, never owned ones', async () => {
  const runtime = new MemoryRuntime();
  const clock = new ManualClock(1_000_000);
  const owned = new Set<string>();
  const orphansRemoved = counter();
  const reconciler = new ContainerReconciler({
    runtime,
    workerId: 'w1',
    labels: mine,
    owned: () => owned,
    intervalMs: 1000,
    graceMs: 5000,
    clock,
    log,
    metrics: { orphansRemoved } as never,
  });
  const pooled = runtime.leak(mine);
  owned.add(pooled);
  const leaked = runtime.leak(mine);
  const starting = runtime.leak(mine); // listed before its pool knows it
  const foreign = runtime.leak({ 'sandpool.managed': 'true', 'sandpool.worker': 'other' });
  assert.equal(await reconciler.runOnce(), 0, 'first sighting only starts the grace');
  clock.advance(3000);
  owned.add(starting); // the pool finished starting it
  assert.equal(await reconciler.runOnce(), 0);
  clock.advance(2000);
  assert.equal(await reconciler.runOnce(), 1);
  assert.deepEqual([...runtime.boxes.keys()].sort(), [foreign, pooled, starting].sort());
  assert.ok(!runtime.boxes.has(leaked));
  assert.equal(orphansRemoved.value, 1);
  // A container that stops being owned (a failed destroy) is removed a grace later.
  owned.delete(starting);
  assert.equal(await reconciler.runOnce(), 0);
  clock.advance(5000);
  assert.equal(await reconciler.runOnce(), 1);
  assert.ok(!runtime.boxes.has(starting));
});

test('a container listed while a start is in flight waits until that start is over', async () => {
  const runtime = new MemoryRuntime();
  const clock = new ManualClock(0);
  let startBegan: number | undefined = 0; // a start began at 0 and is still running
  const reconciler = new ContainerReconciler({
    runtime,
    workerId: 'w1',
    labels: mine,
    owned: () => [],
    oldestStartBegan: () => startBegan,
    intervalMs: 1000,
    graceMs: 1000,
    clock,
    log,
    metrics: { orphansRemoved: counter() } as never,
  });
  clock.advance(500);
  const appeared = runtime.leak(mine); // could be the container of that start
  await reconciler.runOnce();
  clock.advance(5000);
  assert.equal(await reconciler.runOnce(), 0, 'kept while the start it may belong to runs');
  startBegan = 5000; // that start ended; another began later
  assert.equal(await reconciler.runOnce(), 1);
  assert.ok(!runtime.boxes.has(appeared));
});

test('a failed removal is retried in a later round', async () => {
  const runtime = new MemoryRuntime();
  const clock = new ManualClock();
  const reconciler = new ContainerReconciler({
    runtime,
    workerId: 'w1',
    labels: mine,
    owned: () => [],
    intervalMs: 1000,
    graceMs: 0,
    clock,
    log,
    metrics: { orphansRemoved: counter() } as never,
  });
  const leaked = runtime.leak(mine);
  await reconciler.runOnce();
  runtime.failRemovals = true;
  assert.equal(await reconciler.runOnce(), 0);
  assert.ok(runtime.boxes.has(leaked));
  runtime.failRemovals = false;
  assert.equal(await reconciler.runOnce(), 1);
});

test('distributed: removes the containers of a registered worker gone longer than the grace', async () => {
  const runtime = new MemoryRuntime();
  const clock = new ManualClock(Date.parse('2026-01-01T00:10:00Z'));
  const entry = (id: string, alive: boolean, last: string): WorkerEntry => ({
    alive,
    heartbeat: {
      worker_id: id,
      url: 'http://x',
      pool_size: 0,
      active_sessions: 0,
      max_sessions: 1,
      accepting: alive,
      last_heartbeat: last,
      version: '0',
    },
  });
  const workers = [
    entry('dead-long', false, '2026-01-01T00:00:00Z'),
    entry('dead-recent', false, '2026-01-01T00:09:30Z'),
    entry('alive', true, '2026-01-01T00:00:00Z'),
  ];
  const reconciler = new ContainerReconciler({
    runtime,
    workerId: 'w1',
    labels: mine,
    owned: () => [],
    intervalMs: 1000,
    graceMs: 60_000,
    clock,
    log,
    metrics: { orphansRemoved: counter() } as never,
    registry: { workers: () => Promise.resolve(workers) },
    deadWorkerGraceMs: 5 * 60_000,
  });
  const ofWorker = (id: string): string =>
    runtime.leak({ 'sandpool.managed': 'true', 'sandpool.worker': id });
  const gone = [ofWorker('dead-long'), ofWorker('dead-long')];
  const kept = [ofWorker('dead-recent'), ofWorker('alive'), ofWorker('unregistered')];
  assert.equal(await reconciler.runOnce(), 2);
  for (const id of gone) assert.ok(!runtime.boxes.has(id));
  for (const id of kept) assert.ok(runtime.boxes.has(id));
});

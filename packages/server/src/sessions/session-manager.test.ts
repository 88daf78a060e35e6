import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { WorkerMetrics } from '../metrics/worker-metrics.js';
import { SandboxPool } from '../pool/sandbox-pool.js';
import { ManualClock, MemoryRuntime } from '../testing/memory-runtime.js';
import { SessionManager, type SessionJournal } from './session-manager.js';

const log = pino({ level: 'silent' });
const labels = { 'sandpool.managed': 'true', 'sandpool.worker': 'unit' };

async function setup(maxSessions = 3, journal?: SessionJournal) {
  const runtime = new MemoryRuntime();
  const clock = new ManualClock(1_000_000);
  const metrics = new WorkerMetrics({
    poolIdle: () => 0,
    poolTarget: () => 0,
    poolWaiting: () => 0,
    activeSessions: () => 0,
  });
  const pool = new SandboxPool({
    runtime,
    labels,
    size: 1,
    refillConcurrency: 1,
    checkIntervalMs: 3_600_000,
    clock,
    log,
    metrics,
  });
  await pool.warm();
  const sessions = new SessionManager({
    workerId: 'unit',
    runtime,
    // One template, served by the one pool.
    pools: {
      check: () => undefined,
      claim: () => pool.claim(),
      refill: () => pool.refill(),
      runtimeOf: () => runtime,
      labelsOf: () => ({}),
    },
    workerLabels: labels,
    maxSessions,
    defaultTtlSeconds: 60,
    maxTtlSeconds: 600,
    reapIntervalMs: 3_600_000,
    clock,
    log,
    metrics,
    journal,
  });
  return { runtime, clock, pool, sessions };
}

test('sessions expire by the injected clock and their containers are removed', async () => {
  const { runtime, clock, pool, sessions } = await setup();
  const short = await sessions.create({ ttlSeconds: 10 });
  const long = await sessions.create({ ttlSeconds: 100 });
  clock.advance(9_999);
  await sessions.reap();
  assert.equal(sessions.activeCount, 2);
  clock.advance(1);
  await sessions.reap();
  assert.equal(sessions.activeCount, 1);
  assert.throws(() => sessions.get(short.id), /No session/);
  assert.equal(sessions.get(long.id).id, long.id);
  await sessions.close();
  await pool.close();
  assert.ok(!runtime.boxes.has(short.sandbox.id));
  assert.ok(!runtime.boxes.has(long.sandbox.id));
});

test('delete stops the container before answering and removes it behind; close waits for it', async () => {
  const { runtime, pool, sessions } = await setup();
  const session = await sessions.create({});
  const box = session.sandbox.id;
  let releaseRemoval = (): void => undefined;
  const removal = new Promise<void>((resolve) => (releaseRemoval = resolve));
  const originalRemove = runtime.remove.bind(runtime);
  runtime.remove = async (id) => {
    await removal;
    return originalRemove(id);
  };
  await sessions.delete(session.id);
  assert.equal(runtime.boxes.get(box)?.running, false, 'stopped when DELETE answers');
  assert.throws(() => sessions.get(session.id), /No session/);
  assert.ok(sessions.ownedContainerIds().has(box), 'still accounted for while it is removed');
  const closing = sessions.close();
  releaseRemoval();
  await closing;
  assert.ok(!runtime.boxes.has(box), 'removed');
  assert.ok(!sessions.ownedContainerIds().has(box));
  await pool.close();
});

test('at the limit a create answers capacity_exhausted; below it, an empty pool makes it wait', async () => {
  const { runtime, pool, sessions } = await setup(2);
  runtime.autoStart = false;
  await sessions.create({}); // the warm one
  const waiting = sessions.create({}); // the pool is empty: waits for a start
  await assert.rejects(sessions.create({}), /limit of 2 sessions/);
  runtime.finishStarts();
  await waiting;
  assert.equal(sessions.activeCount, 2);
  runtime.autoStart = true;
  runtime.finishStarts();
  await sessions.close();
  await pool.close();
});

test('a create counts against the limit until the journal has recorded it', async () => {
  // Redis answers slowly: the first create is between its container and its table entry.
  let release: () => void = () => undefined;
  const recorded = new Promise<void>((resolve) => (release = resolve));
  const journal: SessionJournal = {
    claim: async () => {
      await recorded;
      return true;
    },
    record: () => undefined,
    forget: () => undefined,
  };
  const { sessions } = await setup(1, journal);
  const first = sessions.create({});
  await new Promise((resolve) => setImmediate(resolve));
  await assert.rejects(sessions.create({}), /limit of 1 sessions/);
  release();
  await first;
  assert.equal(sessions.activeCount, 1);
  await sessions.close();
});

test('each session has its own unguessable access token, shown in its view and kept on re-adoption', async () => {
  const { pool, sessions } = await setup();
  const a = await sessions.create({});
  const b = await sessions.create({});
  assert.match(a.accessToken, /^[A-Za-z0-9_-]{32}$/);
  assert.notEqual(a.accessToken, b.accessToken);
  assert.equal(sessions.view(a).access_token, a.accessToken);
  await sessions.delete(b.id);
  const kept = sessions.adopt({ ...b, id: 'sb_kept', accessToken: 'from-the-record' });
  assert.equal(kept.accessToken, 'from-the-record');
  const old = sessions.adopt({ ...b, id: 'sb_old', accessToken: undefined });
  assert.match(old.accessToken, /^[A-Za-z0-9_-]{32}$/, 'a record without one gets a new token');
  await sessions.close();
  await pool.close();
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, type TestWorker } from './support/worker-harness.js';
import { call, createSession, exec } from './support/http.js';
import { containersOf, docker } from './support/docker.js';
import { until } from './support/until.js';

describe('sessions and the pool', () => {
  let w: TestWorker;

  before(async () => {
    w = await startWorker({ poolSize: 2, maxSessions: 4, reapIntervalMs: 200 });
  });
  after(async () => {
    await w.close();
    assert.deepEqual(await containersOf(w.workerId), [], 'containers left after close');
  });

  test('create, get, list, keepalive and delete follow the contract', async () => {
    const created = await call(w.url, 'POST', '/v1/sessions', {
      ttl_seconds: 120,
      metadata: { owner: 'test' },
    });
    assert.equal(created.status, 201);
    const id = created.body.session_id as string;
    assert.match(id, /^sb_[0-9a-f]{32}$/);
    assert.equal(created.body.worker_id, w.workerId);
    assert.deepEqual(created.body.metadata, { owner: 'test' });
    const ttl =
      Date.parse(created.body.expires_at as string) - Date.parse(created.body.created_at as string);
    assert.equal(ttl, 120_000);

    const got = await call(w.url, 'GET', `/v1/sessions/${id}`);
    assert.deepEqual(got.body, created.body);
    const listed = await call<{ sessions: { session_id: string }[] }>(w.url, 'GET', '/v1/sessions');
    assert.ok(listed.body.sessions.some((s) => s.session_id === id));

    const kept = await call(w.url, 'POST', `/v1/sessions/${id}/keepalive`, { ttl_seconds: 600 });
    assert.equal(kept.status, 200);
    assert.ok(
      Date.parse(kept.body.expires_at as string) > Date.parse(created.body.expires_at as string),
    );

    const deleted = await call(w.url, 'DELETE', `/v1/sessions/${id}`);
    assert.equal(deleted.status, 204);
    const gone = await call<{ error: { code: string } }>(w.url, 'GET', `/v1/sessions/${id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'session_not_found');
  });

  test('session env reaches every command, and a command env adds to it', async () => {
    const id = await createSession(w.url, { env: { GREETING: 'hello', WHO: 'session' } });
    const r = await exec(w.url, id, { command: 'echo "$GREETING $WHO"', env: { WHO: 'command' } });
    assert.equal(r.stdout, 'hello command\n');
    await call(w.url, 'DELETE', `/v1/sessions/${id}`);
  });

  test('exec takes argv, cwd and stdin, and runs several commands at once', async () => {
    const id = await createSession(w.url);
    const argv = await exec(w.url, id, { argv: ['printf', '%s|', 'a b', '$HOME'] });
    assert.equal(argv.stdout, 'a b|$HOME|');
    const cwd = await exec(w.url, id, { command: 'mkdir -p sub && cd sub && pwd' });
    assert.equal(cwd.stdout, '/home/sandboxuser/sub\n');
    assert.equal(
      (await exec(w.url, id, { command: 'pwd', cwd: 'sub' })).stdout,
      '/home/sandboxuser/sub\n',
    );
    assert.equal((await exec(w.url, id, { command: 'pwd', cwd: '/tmp' })).stdout, '/tmp\n');
    assert.equal(
      (await exec(w.url, id, { command: 'tr a-z A-Z', stdin: 'shout\n' })).stdout,
      'SHOUT\n',
    );
    const started = Date.now();
    const parallel = await Promise.all(
      [1, 2, 3].map((n) => exec(w.url, id, { command: `sleep 1; echo ${n}` })),
    );
    assert.deepEqual(
      parallel.map((r) => r.stdout),
      ['1\n', '2\n', '3\n'],
    );
    assert.ok(Date.now() - started < 2900, 'three 1 s commands ran one after another');
    const failed = await exec(w.url, id, { command: 'echo out; echo err >&2; exit 7' });
    assert.deepEqual(
      [failed.stdout, failed.stderr, failed.exit_code, failed.timed_out],
      ['out\n', 'err\n', 7, false],
    );
    await call(w.url, 'DELETE', `/v1/sessions/${id}`);
  });

  test('the seed routes work as before', async () => {
    const created = await call(w.url, 'POST', '/create_session');
    assert.equal(created.status, 201);
    const id = created.body.session_id as string;
    const ran = await call(w.url, 'POST', '/execute', { session_id: id, command: 'whoami' });
    assert.equal(ran.status, 200);
    assert.equal(ran.body.stdout, 'sandboxuser\n');
    await call(w.url, 'DELETE', `/v1/sessions/${id}`);
  });

  test('a short TTL expires the session and removes its container', async () => {
    const before = (await containersOf(w.workerId)).length;
    const id = await createSession(w.url, { ttl_seconds: 1 });
    await until(async () => (await call(w.url, 'GET', `/v1/sessions/${id}`)).status === 404);
    await until(async () => (await containersOf(w.workerId)).length <= before);
  });

  test('the pool refills after claims, and /health reports it', async () => {
    const ids = [await createSession(w.url), await createSession(w.url)];
    // Full again: at its target, which is --pool-size (2) or more if a create found it empty.
    await until(async () => poolFull((await call(w.url, 'GET', '/health')).body));
    const health = await call(w.url, 'GET', '/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'healthy');
    assert.equal(health.body.worker_id, w.workerId);
    assert.equal(health.body.active_sessions, 2);
    assert.ok(poolFull(health.body));
    for (const id of ids) await call(w.url, 'DELETE', `/v1/sessions/${id}`);
  });

  test('at the session limit, creates answer 503 capacity_exhausted with Retry-After', async () => {
    const ids = await Promise.all([1, 2, 3, 4].map(() => createSession(w.url)));
    const refused = await call<{ error: { code: string; message: string } }>(
      w.url,
      'POST',
      '/v1/sessions',
    );
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, 'capacity_exhausted');
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
    for (const id of ids) await call(w.url, 'DELETE', `/v1/sessions/${id}`);
    assert.equal((await call(w.url, 'POST', '/v1/sessions', { ttl_seconds: 5 })).status, 201);
  });

  test('a container killed behind the worker answers 410 session_lost, and the pool refills', async () => {
    const id = await createSession(w.url);
    const target = w.worker.sessions.get(id).sandbox.id;
    assert.ok(target, 'session container found');
    await docker('kill', target);
    const lost = await call<{ error: { code: string } }>(w.url, 'POST', `/v1/sessions/${id}/exec`, {
      command: 'true',
    });
    assert.equal(lost.status, 410);
    assert.equal(lost.body.error.code, 'session_lost');
    assert.equal((await call(w.url, 'GET', `/v1/sessions/${id}`)).status, 410);
    await until(async () => poolFull((await call(w.url, 'GET', '/health')).body));
  });

  test('a new worker with the same id removes what an earlier run left behind', async () => {
    const first = await startWorker({ poolSize: 1 });
    await createSession(first.url);
    // Its refill must be done: a start still in flight would land after the next run looked.
    await until(
      async () => first.worker.pools.idleCount === 1 && first.worker.pools.startingCount === 0,
    );
    // Simulate a crash: drop the worker without closing it, containers stay.
    await first.worker.app.close();
    assert.ok((await containersOf(first.workerId)).length >= 1);
    const second = await startWorker({ poolSize: 1, workerId: first.workerId });
    try {
      const left = await containersOf(first.workerId);
      assert.equal(left.length, 1, 'only the new pool container remains');
    } finally {
      await first.close(); // Stops the old run's timers; its containers are already gone.
      await second.close();
    }
    assert.deepEqual(await containersOf(first.workerId), []);
  });
});

/** The elastic pool holds its target, at least --pool-size (2). */
function poolFull(health: Record<string, unknown>): boolean {
  return Number(health.pool_size) >= 2 && health.pool_size === health.pool_target;
}

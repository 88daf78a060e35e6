import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { call, createSession, exec } from '../support/http.js';
import { containersOf } from '../support/docker.js';
import { until } from '../support/until.js';

const run = promisify(execFile);
const PIDFILE = '/var/run/sandpool-dockerd.pid';
const PROVISION = fileURLToPath(new URL('../../scripts/provision.sh', import.meta.url));

/** Whether the process runs (a zombie waiting for its parent to reap it counts as gone). */
const processAlive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

const engineAnswers = async () =>
  await run('docker', ['info']).then(
    () => true,
    () => false,
  );

// Stops the engine under a live worker: it runs alone (a *.serial test), and only where
// scripts/provision.sh started the engine, so it can be started again the same way.
const managed = existsSync(PIDFILE);

describe(
  'the Docker engine stops and starts under a worker',
  {
    skip: managed
      ? false
      : `the engine was not started by scripts/provision.sh (${PIDFILE} missing)`,
  },
  () => {
    let w: TestWorker;
    let session: string;

    before(async () => {
      w = await startWorker({
        poolSize: 1,
        // A fixed pool: the recovery check below waits for exactly one warm container.
        poolMax: 1,
        poolCheckIntervalMs: 1000,
        reapIntervalMs: 500,
        engineCheckIntervalMs: 300,
      });
      session = await createSession(w.url);
      assert.equal((await exec(w.url, session, { command: 'echo before' })).stdout, 'before\n');
    });
    after(async () => {
      if (!(await engineAnswers())) await run('bash', [PROVISION]);
      await w.close();
      assert.deepEqual(await containersOf(w.workerId), []);
    });

    test('503 while it is down, then the worker recovers by itself', async () => {
      const pid = Number(readFileSync(PIDFILE, 'utf8').trim());
      process.kill(pid, 'SIGTERM');
      // Until dockerd has exited: while it stops its containers, its API can still answer now
      // and then, so a failed `docker info` alone does not mean the engine is down.
      await until(async () => !processAlive(pid) && !(await engineAnswers()), 60_000);

      await until(async () => (await call(w.url, 'GET', '/health')).status === 503, 10_000);
      const health = await call(w.url, 'GET', '/health');
      assert.equal(health.body.status, 'unhealthy');
      assert.ok(String(health.body.reason).length > 0);
      const create = await call<{ error: { code: string } }>(w.url, 'POST', '/v1/sessions');
      assert.equal(create.status, 503);
      assert.equal(create.body.error.code, 'runtime_unavailable');
      assert.ok(Number(create.headers.get('retry-after')) > 0);
      const execDown = await call<{ error: { code: string } }>(
        w.url,
        'POST',
        `/v1/sessions/${session}/exec`,
        { command: 'true' },
      );
      assert.ok([503, 410].includes(execDown.status), `exec while down: ${execDown.status}`);

      await run('bash', [PROVISION], { timeout: 120_000 });
      await until(async () => (await call(w.url, 'GET', '/health')).status === 200, 30_000);
      // The engine stopped every container: the old session is reported lost, never silently wrong.
      await until(
        async () =>
          (await call(w.url, 'POST', `/v1/sessions/${session}/exec`, { command: 'true' }))
            .status === 410,
        15_000,
      );
      await until(async () => (await call(w.url, 'GET', '/health')).body.pool_size === 1, 30_000);
      const fresh = await createSession(w.url);
      assert.equal((await exec(w.url, fresh, { command: 'echo after' })).stdout, 'after\n');
      await call(w.url, 'DELETE', `/v1/sessions/${fresh}`);
    });
  },
);

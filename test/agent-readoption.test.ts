import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { call, createSession, exec } from './support/http.js';
import { containersOf } from './support/docker.js';
import { TestRedis } from './support/redis-server.js';
import { SandpoolProcess } from './support/sandpool-process.js';

/**
 * Issue 10, item 14: a session re-adopted after a worker restart keeps the agent path (a fresh
 * agent started in its container through one `docker exec`), instead of falling back to running
 * every command through `docker exec`.
 */

/** The command's parent: the agent on the agent path, a wrapper shell on the docker-exec path. */
const PARENT = 'tr "\\0" " " < /proc/$PPID/cmdline';

describe('a session re-adopted after a worker restart', () => {
  let redis: TestRedis;
  const workerId = `readopt-${randomBytes(3).toString('hex')}`;
  let worker: SandpoolProcess | undefined;

  const start = () =>
    SandpoolProcess.start([
      'serve',
      '--port',
      '0',
      '--pool-size',
      '1',
      '--worker-id',
      workerId,
      '--redis',
      redis.url,
      '--log-level',
      'info',
    ]);

  before(async () => {
    redis = await TestRedis.start();
  });
  after(async () => {
    await worker?.stop('SIGTERM');
    await redis.stop();
    assert.deepEqual(await containersOf(workerId), [], 'containers leaked');
  });

  test("keeps the agent path: its commands are the agent's children, its files and state kept", async () => {
    worker = await start();
    const id = await createSession(worker.url);
    await exec(worker.url, id, { command: 'echo kept > note.txt' });
    assert.match((await exec(worker.url, id, { command: PARENT })).stdout, /sandpool_agent\.py/);

    await worker.stop('SIGKILL');
    worker = await start();
    assert.match(worker.log, /re-adopted 1 live session/);

    const parent = await exec(worker.url, id, { command: PARENT });
    assert.match(parent.stdout, /sandpool_agent\.py/, `the command ran under ${parent.stdout}`);
    assert.equal((await exec(worker.url, id, { command: 'cat note.txt' })).stdout, 'kept\n');
    // Files, streaming and timeouts go over the same fresh agent.
    const listed = await call<{ entries: { name: string }[] }>(
      worker.url,
      'GET',
      `/v1/sessions/${id}/files/list?path=.`,
    );
    assert.ok(listed.body.entries.some((e) => e.name === 'note.txt'));
    const slow = await exec(worker.url, id, { command: 'sleep 30', timeout_ms: 500 });
    assert.equal(slow.timed_out, true);
    assert.equal((await call(worker.url, 'DELETE', `/v1/sessions/${id}`)).status, 204);
  });
});

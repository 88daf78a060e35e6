import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { call, createSession, exec } from '../support/http.js';
import { containersOf } from '../support/docker.js';

/** What a careful attacker tries after the SECURITY.md classes; each must stay inside its sandbox. */
describe('the next moves of an attacker stay contained', () => {
  let w: TestWorker;
  let id: string;
  const files = (sessionId: string, path: string) =>
    `${w.url}/v1/sessions/${sessionId}/files?path=${encodeURIComponent(path)}`;

  before(async () => {
    w = await startWorker({ poolSize: 2 });
    id = await createSession(w.url);
  });
  after(async () => {
    await w.close();
    assert.deepEqual(await containersOf(w.workerId), [], 'containers leaked');
  });

  test('kernel and firmware interfaces are masked or read-only', async () => {
    const r = await exec(w.url, id, {
      command:
        'head -c 16 /proc/kcore >/dev/null 2>&1 && echo kcore-readable; ' +
        'ls /sys/firmware 2>/dev/null | head -1 | grep -q . && echo firmware-listed; ' +
        'echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo procsys-writable; ' +
        'echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; ' +
        'mount -t tmpfs none /mnt 2>/dev/null && echo mounted; echo done',
    });
    assert.equal(r.stdout, 'done\n');
  });

  test('a symlink planted in the home does not reach outside the sandbox', async () => {
    await exec(w.url, id, { command: 'ln -sf /etc/passwd ~/pw; ln -sfn /etc ~/etcdir' });
    // Reading through it shows the sandbox's own /etc/passwd (it is the user's own file system).
    const read = await fetch(files(id, 'pw'));
    assert.equal(read.status, 200);
    assert.match(await read.text(), /sandboxuser:x:1000/);
    // Writing through it fails: the root file system is read-only for uid 1000.
    const write = await fetch(files(id, 'etcdir/evil'), { method: 'PUT', body: 'x' });
    assert.equal(write.status, 400);
    const hostSide = await exec(w.url, id, { command: 'ls /etc/evil 2>&1 || true' });
    assert.match(hostSide.stdout, /No such file/);
  });

  test('very long argv, env and paths answer 400 or run, never crash', async () => {
    const longArg = await call(w.url, 'POST', `/v1/sessions/${id}/exec`, {
      argv: ['echo', 'a'.repeat(200_000)],
    });
    assert.ok([200, 400].includes(longArg.status), String(longArg.status));
    const manyArgs = await call(w.url, 'POST', `/v1/sessions/${id}/exec`, {
      argv: Array.from({ length: 5000 }, () => 'x'),
    });
    assert.equal(manyArgs.status, 400);
    const longEnv = await call(w.url, 'POST', `/v1/sessions/${id}/exec`, {
      command: 'true',
      env: { ['A'.repeat(300)]: 'x' },
    });
    assert.equal(longEnv.status, 400);
    const longPath = await fetch(files(id, `${'d/'.repeat(3000)}f`), { method: 'PUT', body: 'x' });
    assert.equal(longPath.status, 400);
    assert.equal((await call(w.url, 'GET', '/health')).status, 200);
  });

  test('a process that ignores SIGTERM still dies at its timeout', async () => {
    const r = await exec(w.url, id, {
      command: "trap '' TERM INT HUP; sleep 600",
      timeout_ms: 1000,
    });
    assert.equal(r.timed_out, true);
    const ps = await exec(w.url, id, { command: 'ps -eo args=' });
    assert.doesNotMatch(ps.stdout, /sleep 600/);
  });

  test('children that left the process group (setsid) die with a timed-out command', async () => {
    const r = await exec(w.url, id, {
      command: 'setsid sleep 701 & (setsid sh -c "sleep 702 & wait" &) ; sleep 600',
      timeout_ms: 1000,
    });
    assert.equal(r.timed_out, true);
    const ps = await exec(w.url, id, { command: 'ps -eo args=' });
    assert.doesNotMatch(ps.stdout, /sleep 70[12]|sleep 600/);
  });

  test('a cwd under /proc or that does not exist is handled', async () => {
    const proc = await call(w.url, 'POST', `/v1/sessions/${id}/exec`, {
      command: 'pwd',
      cwd: '/proc/self/fd/0',
    });
    assert.ok([200, 400].includes(proc.status));
    const missing = await call<{ exit_code: number }>(w.url, 'POST', `/v1/sessions/${id}/exec`, {
      command: 'pwd',
      cwd: '/nowhere',
    });
    assert.ok(missing.status === 400 || missing.body.exit_code !== 0);
  });

  test('a command that stops itself in a loop ends at its timeout', async () => {
    const r = await exec(w.url, id, {
      command: 'while true; do kill -STOP $$; done',
      timeout_ms: 1500,
    });
    assert.equal(r.timed_out, true);
    assert.equal((await exec(w.url, id, { command: 'echo alive' })).stdout, 'alive\n');
  });

  test('a flood of tiny execs in one session leaves another session responsive', async () => {
    const other = await createSession(w.url);
    let flooding = true;
    const flood = (async () => {
      let n = 0;
      while (flooding) {
        await Promise.all(Array.from({ length: 5 }, () => exec(w.url, id, { command: 'true' })));
        n += 5;
      }
      return n;
    })();
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      assert.equal((await exec(w.url, other, { command: 'echo hi' })).stdout, 'hi\n');
      latencies.push(Date.now() - started);
    }
    flooding = false;
    const flooded = await flood;
    assert.ok(flooded > 0);
    // Generous bound: the point is that the other session is served, not a latency target.
    assert.ok(Math.max(...latencies) < 10_000, `other session latencies ${latencies.join(',')}`);
    await call(w.url, 'DELETE', `/v1/sessions/${other}`);
  });

  test('killing every process of the sandbox user from inside cannot take the agent (pid 1) down', async () => {
    const victim = await createSession(w.url);
    await call(w.url, 'POST', `/v1/sessions/${victim}/exec`, {
      command: 'sleep 600 & kill -9 -1; kill -9 1',
      timeout_ms: 5000,
    });
    const after = await exec(w.url, victim, { command: 'pgrep -c sleep; echo alive' });
    assert.equal(after.stdout, '0\nalive\n', 'every other process died, the agent did not');
    assert.equal((await exec(w.url, id, { command: 'echo unaffected' })).stdout, 'unaffected\n');
    assert.equal((await call(w.url, 'GET', '/health')).status, 200);
  });
});

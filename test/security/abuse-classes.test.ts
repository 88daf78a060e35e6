import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { call, createSession, exec } from '../support/http.js';
import { until } from '../support/until.js';

/** Processes per sandbox for this file: not the default, so the test sees the setting apply. */
const PIDS_LIMIT = 200;

// The abuse classes of SECURITY.md, each through the public API against a real engine.
describe('a sandbox contains what runs in it', () => {
  let w: TestWorker;
  let session: string;

  before(async () => {
    w = await startWorker({ poolSize: 2, tmpSizeMb: 16, homeSizeMb: 32, pidsLimit: PIDS_LIMIT });
    session = await createSession(w.url);
  });
  after(() => w.close());

  test('commands run as sandboxuser, uid 1000, with python3', async () => {
    const r = await exec(w.url, session, {
      command: 'whoami; id -u; id -g; python3 -c "print(6*7)"',
    });
    assert.equal(r.stdout, 'sandboxuser\n1000\n1000\n42\n');
    assert.equal(r.exit_code, 0);
  });

  test('no capabilities, no new privileges, seccomp on', async () => {
    const r = await exec(w.url, session, {
      command: 'grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status',
    });
    assert.match(r.stdout, /CapEff:\s+0000000000000000/);
    assert.match(r.stdout, /NoNewPrivs:\s+1/);
    assert.match(r.stdout, /Seccomp:\s+2/);
  });

  test('only the loopback interface exists', async () => {
    const r = await exec(w.url, session, { command: 'ls /sys/class/net' });
    assert.deepEqual(r.stdout.trim().split(/\s+/), ['lo']);
  });

  test('no docker socket, no host secrets in the environment', async () => {
    const r = await exec(w.url, session, {
      command: 'ls -la /var/run/docker.sock /run/docker.sock 2>&1; env',
    });
    assert.doesNotMatch(r.stdout, /srw.*docker\.sock/);
    // SANDPOOL_EXEC is the exec's own marker (how a timeout finds its processes), not a secret.
    assert.doesNotMatch(r.stdout, /SANDPOOL_(?!EXEC=)|DOCKER_HOST|API_KEY/);
  });

  test('the root filesystem is read-only and the home fills up at its tmpfs size', async () => {
    const root = await exec(w.url, session, { command: 'touch /usr/x 2>&1; echo rc=$?' });
    assert.match(root.stdout, /Read-only file system/);
    const fill = await exec(w.url, session, {
      command:
        'dd if=/dev/zero of=/home/sandboxuser/fill bs=1M count=100 2>&1; echo rc=$?; rm -f /home/sandboxuser/fill',
      timeout_ms: 30_000,
    });
    assert.match(fill.stdout, /No space left on device/);
    assert.match(fill.stdout, /rc=1/);
  });

  test('a memory bomb is killed with 137 and the session keeps working', async () => {
    const r = await exec(w.url, session, {
      command: 'python3 -c "b = bytearray()\nwhile True: b.extend(bytearray(16 * 1024 * 1024))"',
      timeout_ms: 60_000,
    });
    assert.equal(r.exit_code, 137);
    assert.equal(r.timed_out, false);
    const after = await exec(w.url, session, { command: 'echo alive' });
    assert.equal(after.stdout, 'alive\n');
  });

  test('a fork bomb hits the process limit, stays inside its session, and ends at its timeout', async () => {
    const bombed = await createSession(w.url);
    const bombing = exec(w.url, bombed, {
      command: "bash -c ':(){ :|:& };:'",
      timeout_ms: 3000,
    }).then((result) => ({ r: result, doneMs: performance.now() }));

    // While it rages, the worker answers and another session runs commands at once.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal((await call(w.url, 'GET', '/health')).status, 200);
    const other = await exec(w.url, session, { command: 'echo fine', timeout_ms: 3000 });
    assert.deepEqual([other.stdout, other.exit_code, other.timed_out], ['fine\n', 0, false]);
    const otherDoneMs = performance.now();

    // The bomb runs to its timeout and no further: its whole process group is killed then.
    const { r, doneMs } = await bombing;
    assert.ok(otherDoneMs < doneMs, 'another session waited for the bomb to end');
    assert.equal(r.timed_out, true);
    assert.ok(r.duration_ms >= 3000 && r.duration_ms < 10_000, `ran ${r.duration_ms} ms`);
    // Its forks failed with EAGAIN, which is what the pids limit answers.
    assert.match(
      r.stderr,
      /fork: (retry: )?Resource temporarily unavailable/,
      r.stderr.slice(0, 500),
    );

    // The session is usable again once the bomb's processes are gone, and its cgroup shows the
    // kernel refused forks at the configured limit (cgroup v1 or v2 layout).
    let counters = '';
    await until(async () => {
      const after = await exec(w.url, bombed, {
        command:
          'cd /sys/fs/cgroup/pids 2>/dev/null || cd /sys/fs/cgroup; echo still here; ' +
          'cat pids.max pids.current pids.events; cat pids.peak 2>/dev/null || true',
        timeout_ms: 3000,
      });
      counters = after.stdout;
      return after.exit_code === 0 && !after.timed_out;
    }, 10_000);
    const [here, max, current, ...rest] = counters.trim().split('\n');
    assert.equal(here, 'still here');
    assert.equal(max, String(PIDS_LIMIT), counters);
    assert.ok(Number(current) < 10, `processes left in the session: ${counters}`);
    const refused = /^max (\d+)$/m.exec(rest.join('\n'));
    assert.ok(refused !== null && Number(refused[1]) > 0, `forks refused: ${counters}`);
    // pids.peak is missing from older cgroup v2 kernels; where present it reached the limit.
    const peak = rest.find((line) => /^\d+$/.test(line));
    if (peak !== undefined) assert.equal(peak, String(PIDS_LIMIT), counters);

    assert.equal((await exec(w.url, session, { command: 'echo fine' })).stdout, 'fine\n');
    const closed = await call(w.url, 'DELETE', `/v1/sessions/${bombed}`);
    assert.equal(closed.status, 204);
  });

  test('output floods are capped and marked truncated', async () => {
    const r = await exec(w.url, session, { command: 'yes', timeout_ms: 2000 });
    assert.equal(r.truncated, true);
    assert.equal(r.timed_out, true);
    assert.equal(Buffer.byteLength(r.stdout), 1024 * 1024);
  });

  test('a timeout kills the whole process group', async () => {
    const r = await exec(w.url, session, { command: 'sleep 600 & sleep 600', timeout_ms: 1000 });
    assert.equal(r.timed_out, true);
    assert.ok(r.duration_ms < 10_000);
    const ps = await exec(w.url, session, { command: 'ps -eo args=' });
    assert.doesNotMatch(ps.stdout, /sleep 600/);
  });

  test('sessions cannot see each other', async () => {
    const other = await createSession(w.url);
    await exec(w.url, session, {
      command: 'echo secret > ~/mine.txt; sleep 30 >/dev/null 2>&1 & echo started',
    });
    const seen = await exec(w.url, other, { command: 'ls ~ /tmp; ps -eo args=' });
    assert.doesNotMatch(seen.stdout, /mine\.txt|sleep 30/);
    await call(w.url, 'DELETE', `/v1/sessions/${other}`);
  });
});

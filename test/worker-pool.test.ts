// The pool and the sandbox's environment against the real engine: /etc/hosts, executable home
// and /tmp (under runc and, where registered, runsc), queued creates past the warm pool, the
// reconciler, and a worker that cannot bind leaving nothing behind.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Worker } from '../packages/server/src/worker/worker.js';
import { loadWorkerConfig } from '../packages/server/src/config/worker-config.js';
import { containersOf, docker } from './support/docker.js';
import { call, createSession, exec } from './support/http.js';
import { until } from './support/until.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

const IMAGE = process.env.SANDPOOL_IMAGE ?? 'sandpool/sandbox:latest';

async function runscRegistered(): Promise<boolean> {
  const runtimes = await docker('info', '--format', '{{json .Runtimes}}').catch(() => '{}');
  return 'runsc' in (JSON.parse(runtimes) as Record<string, unknown>);
}

const ENVIRONMENT_CHECKS = String.raw`
set -e
python3 -c "import socket; print(socket.gethostbyname('localhost'))"
python3 -c "import socket; print(socket.getaddrinfo('ip6-localhost', 1)[0][4][0])"
python3 -c "import socket; print(socket.gethostbyname(socket.gethostname()))"
printf '#!/bin/sh\necho ran-from-home\n' > ~/build.sh && chmod +x ~/build.sh && ~/build.sh
printf '#!/bin/sh\necho ran-from-tmp\n' > /tmp/t.sh && chmod +x /tmp/t.sh && /tmp/t.sh
mkdir -p ~/node_modules/.bin ~/.local/bin
printf '#!/bin/sh\necho ran-from-bin\n' > ~/node_modules/.bin/tool && chmod +x ~/node_modules/.bin/tool
~/node_modules/.bin/tool
python3 -m venv --without-pip ~/venv && ~/venv/bin/python -c "import sys; print('venv', sys.prefix)"
cp /bin/true ~/.local/bin/mytrue && ~/.local/bin/mytrue && echo copied-binary-ran
# nosuid and nodev stay: a setuid bit on a file in the home gives nothing.
grep -E ' (/home/sandboxuser|/tmp) ' /proc/mounts
`;

for (const ociRuntime of ['runc', 'runsc']) {
  describe(`the sandbox environment under ${ociRuntime}`, async () => {
    const available = ociRuntime === 'runc' || (await runscRegistered());
    let w: TestWorker;
    before(async () => {
      if (available) w = await startWorker({ poolSize: 1, ociRuntime });
    });
    after(async () => {
      if (!available) return;
      await w.close();
      assert.deepEqual(await containersOf(w.workerId), []);
    });

    test(
      'localhost, ip6-localhost and the hostname resolve; the home and /tmp run programs',
      { skip: available ? false : 'runsc is not registered with the engine' },
      async () => {
        const id = await createSession(w.url);
        const result = await exec(w.url, id, { command: ENVIRONMENT_CHECKS, timeout_ms: 30_000 });
        assert.equal(result.exit_code, 0, result.stderr + result.stdout);
        const lines = result.stdout.split('\n');
        assert.equal(lines[0], '127.0.0.1');
        assert.equal(lines[1], '::1');
        assert.equal(lines[2], '127.0.1.1');
        for (const marker of [
          'ran-from-home',
          'ran-from-tmp',
          'ran-from-bin',
          'venv /home/sandboxuser/venv',
          'copied-binary-ran',
        ]) {
          assert.ok(result.stdout.includes(marker), `${marker} in ${result.stdout}`);
        }
        if (ociRuntime === 'runc') {
          // gVisor's /proc/mounts does not list these flags; runc's does.
          for (const line of lines.filter((l) => / (\/home\/sandboxuser|\/tmp) /.test(l))) {
            assert.match(line, /nosuid/);
            assert.match(line, /nodev/);
            assert.doesNotMatch(line, /noexec/);
          }
        }
        const hosts = await exec(w.url, id, { command: 'cat /etc/hosts' });
        assert.match(hosts.stdout, /^127\.0\.0\.1\s+localhost$/m);
        assert.match(hosts.stdout, /ip6-localhost/);
        assert.match(hosts.stdout, /^127\.0\.1\.1\s+sandbox$/m);
        const write = await exec(w.url, id, { command: 'echo 10.0.0.1 pypi.org >> /etc/hosts' });
        assert.notEqual(write.exit_code, 0, 'the sandbox cannot change its hosts file');
        // The fast path: no network set up by the engine, our read-only hosts file mounted.
        for (const container of await containersOf(w.workerId)) {
          const [info] = JSON.parse(await docker('inspect', container)) as {
            Config: { NetworkDisabled?: boolean };
            Mounts: { Destination: string; RW: boolean }[];
          }[];
          assert.equal(info.Config.NetworkDisabled, true);
          assert.deepEqual(
            info.Mounts.filter((m) => m.Destination === '/etc/hosts').map((m) => m.RW),
            [false],
          );
        }
        await call(w.url, 'DELETE', `/v1/sessions/${id}`);
      },
    );
  });
}

describe('the pool under demand', () => {
  let w: TestWorker;
  before(async () => {
    w = await startWorker({ poolSize: 2, poolMax: 8, maxSessions: 200 });
  });
  after(async () => {
    await w.close();
    assert.deepEqual(await containersOf(w.workerId), []);
  });

  test('creates past the warm pool wait for a container instead of 503; the target grows', async () => {
    const statuses: number[] = [];
    const ids: string[] = [];
    const queue = Array.from({ length: 24 }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (queue.shift() !== undefined) {
          const created = await call<{ session_id: string }>(w.url, 'POST', '/create_session');
          statuses.push(created.status);
          if (created.status === 201 || created.status === 200) ids.push(created.body.session_id);
        }
      }),
    );
    assert.deepEqual(
      statuses.filter((s) => s >= 300),
      [],
      'every create succeeded',
    );
    const health = await call<Record<string, number>>(w.url, 'GET', '/health');
    assert.ok((health.body.pool_misses ?? 0) > 0, 'some creates waited');
    assert.equal((health.body.pool_hits ?? 0) + (health.body.pool_misses ?? 0), 24);
    assert.ok((health.body.pool_target ?? 0) > 2, 'the target grew past --pool-size');
    assert.ok((health.body.pool_target ?? 0) <= 8, 'but not past --pool-max');
    const metrics = await (await fetch(`${w.url}/metrics`)).text();
    assert.match(metrics, /^sandpool_pool_target \d+$/m);
    assert.match(metrics, /^sandpool_pool_hits_total \d+$/m);
    assert.match(metrics, /^sandpool_pool_misses_total \d+$/m);
    // DELETE answers once the container is stopped; its removal follows behind.
    const session = ids[0] ?? '';
    const container = w.worker.sessions.get(session).sandbox.id;
    assert.equal((await call(w.url, 'DELETE', `/v1/sessions/${session}`)).status, 204);
    const state = await docker('inspect', '--format', '{{.State.Running}}', container).catch(
      () => 'gone',
    );
    assert.ok(['false', 'gone'].includes(state.trim()), `container state after DELETE: ${state}`);
    await until(async () => (await docker('ps', '-aq', '--filter', `id=${container}`)) === '');
    for (const id of ids.slice(1)) await call(w.url, 'DELETE', `/v1/sessions/${id}`);
  });
});

describe('the reconciler', () => {
  let w: TestWorker;
  before(async () => {
    w = await startWorker({ poolSize: 1, reconcileIntervalMs: 200, orphanGraceMs: 600 });
  });
  after(async () => {
    await w.close();
    assert.deepEqual(await containersOf(w.workerId), []);
  });

  test('removes a container labelled with this worker that nothing owns, and only that', async () => {
    const id = await createSession(w.url);
    const leaked = (
      await docker(
        'run',
        '-d',
        '--label',
        'sandpool.managed=true',
        '--label',
        `sandpool.worker=${w.workerId}`,
        '--entrypoint',
        'sleep',
        IMAGE,
        'infinity',
      )
    ).trim();
    await until(
      async () => !(await containersOf(w.workerId)).some((c) => leaked.startsWith(c)),
      15_000,
      'the leaked container removed',
    );
    // The pooled container and the session's are still there and work.
    assert.equal((await exec(w.url, id, { command: 'echo alive' })).stdout, 'alive\n');
    await until(
      async () => (await call<{ pool_size: number }>(w.url, 'GET', '/health')).body.pool_size === 1,
    );
    const metrics = await (await fetch(`${w.url}/metrics`)).text();
    assert.match(metrics, /^sandpool_orphans_removed_total [1-9]/m);
  });
});

test('a worker that cannot bind its port starts no container and leaves nothing', async () => {
  const blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const address = blocker.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const workerId = `test-bind-${process.pid}-${port}`;
  try {
    const config = {
      ...loadWorkerConfig({}, { SANDPOOL_IMAGE: process.env.SANDPOOL_IMAGE }),
      port,
      workerId,
      poolSize: 3,
      logLevel: 'silent',
    };
    const worker = await Worker.create(config, { onProgress: () => undefined });
    await assert.rejects(worker.listen(), /EADDRINUSE|in use/i);
    assert.equal(worker.status, 'closed');
    assert.deepEqual(await containersOf(workerId), []);
  } finally {
    blocker.close();
  }
});

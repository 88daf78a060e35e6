import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readdir, readlink } from 'node:fs/promises';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { call, createSession, exec } from '../support/http.js';
import { containersOf, docker } from '../support/docker.js';
import { DockerAgentSandbox } from '../../packages/server/src/runtime/docker/docker-agent-sandbox.js';
import { until } from '../support/until.js';

/** Clients that go away midway, flood the worker, or crawl: nothing leaks, nothing hangs. */
describe('misbehaving clients', () => {
  let w: TestWorker;
  let id: string;
  const files = (path: string) =>
    `${w.url}/v1/sessions/${id}/files?path=${encodeURIComponent(path)}`;
  const processes = async () => (await exec(w.url, id, { command: 'ps -eo args=' })).stdout;

  before(async () => {
    // A fixed pool (max = size), so the counts of containers below are exact.
    w = await startWorker({ poolSize: 1, poolMax: 1, maxSessions: 4 });
    id = await createSession(w.url);
  });
  after(async () => {
    await w.close();
    assert.deepEqual(await containersOf(w.workerId), [], 'containers leaked');
  });

  test('a client that disconnects mid-stream gets its command killed', async () => {
    const controller = new AbortController();
    const response = await fetch(`${w.url}/v1/sessions/${id}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({ command: 'echo started; sleep 300' }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read(); // the first line arrived: the command runs
    controller.abort();
    await until(async () => !/sleep 300/.test(await processes()));
  });

  test('a client that disconnects mid-upload leaves no partial file and no process', async () => {
    const controller = new AbortController();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (sent >= 2 * 1024 * 1024) {
          controller.abort();
          return;
        }
        sent += 256 * 1024;
        c.enqueue(randomBytes(256 * 1024));
        await new Promise((r) => setTimeout(r, 20));
      },
    });
    await fetch(files('aborted.bin'), {
      method: 'PUT',
      body,
      duplex: 'half',
      signal: controller.signal,
    }).catch(() => undefined);
    await until(async () => {
      const left = await exec(w.url, id, { command: 'ls -a ~; ps -eo args=' });
      return !/aborted\.bin|cat/.test(left.stdout);
    });
  });

  test('a client that disconnects mid-download leaves nothing pending in the worker or the agent', async () => {
    await exec(w.url, id, { command: 'head -c 50000000 /dev/zero > ~/big.bin' });
    const sandbox = w.worker.sessions.get(id).sandbox;
    assert.ok(sandbox instanceof DockerAgentSandbox, 'the session runs on the agent path');
    // What the agent (the container's pid 1) holds open, seen from the host.
    const hostPid = (await docker('inspect', '-f', '{{.State.Pid}}', sandbox.id)).trim();
    const agentOpens = async () => {
      const fds = await readdir(`/proc/${hostPid}/fd`);
      const targets = await Promise.all(
        fds.map((fd) => readlink(`/proc/${hostPid}/fd/${fd}`).catch(() => '')),
      );
      return targets.filter((target) => target.endsWith('/big.bin')).length;
    };
    const controller = new AbortController();
    const response = await fetch(files('big.bin'), { signal: controller.signal });
    const reader = response.body!.getReader();
    await reader.read();
    assert.equal(sandbox.inFlight.requests, 1, 'the download is in flight');
    assert.equal(await agentOpens(), 1, 'the agent reads the file');
    controller.abort();
    await until(async () => sandbox.inFlight.requests === 0, 5000, 'the read request released');
    assert.equal(sandbox.inFlight.watchdog, false, 'the watchdog timer stopped');
    await until(async () => (await agentOpens()) === 0, 5000, 'the agent closed the file');
    assert.equal((await exec(w.url, id, { command: 'rm ~/big.bin; echo ok' })).stdout, 'ok\n');
  });

  test('a client that gives up on a create leaves no session and no container', async () => {
    // No pool: the create starts a container, so the client can leave while it does.
    const cold = await startWorker({ poolSize: 0, poolMin: 0, poolMax: 0 });
    try {
      const controller = new AbortController();
      const pending = fetch(`${cold.url}/v1/sessions`, {
        method: 'POST',
        signal: controller.signal,
      }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 30));
      controller.abort();
      await pending;
      await until(
        async () => (await containersOf(cold.workerId)).length === 0,
        15_000,
        'abandoned session removed',
      );
      const listed = await call<{ sessions: unknown[] }>(cold.url, 'GET', '/v1/sessions');
      assert.deepEqual(listed.body.sessions, []);
    } finally {
      await cold.close();
    }
  });

  test('a burst of creates past capacity answers 503 with Retry-After and leaks nothing', async () => {
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => call(w.url, 'POST', '/v1/sessions', { ttl_seconds: 60 })),
    );
    const created = answers.filter((a) => a.status === 201).map((a) => a.body.session_id as string);
    const refused = answers.filter((a) => a.status === 503);
    assert.equal(created.length, 3, 'the limit is 4 and one session exists');
    assert.equal(refused.length, 9);
    for (const r of refused) {
      assert.equal((r.body as { error: { code: string } }).error.code, 'capacity_exhausted');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
    for (const s of created)
      assert.equal((await call(w.url, 'DELETE', `/v1/sessions/${s}`)).status, 204);
    await until(async () => (await containersOf(w.workerId)).length === 2); // one session + one pooled
  });

  test('slow clients that never finish their headers do not stop others being served', async () => {
    const { port } = new URL(w.url);
    const sockets = Array.from({ length: 100 }, () => {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write('POST /v1/sessions HTTP/1.1\r\nHost: x\r\n');
      return socket;
    });
    const drip = setInterval(() => {
      for (const s of sockets) s.write('X-Slow: y\r\n');
    }, 200);
    try {
      for (let i = 0; i < 5; i++) {
        assert.equal((await exec(w.url, id, { command: 'echo served' })).stdout, 'served\n');
      }
      assert.equal((await call(w.url, 'GET', '/health')).status, 200);
    } finally {
      clearInterval(drip);
      for (const s of sockets) s.destroy();
    }
  });
});

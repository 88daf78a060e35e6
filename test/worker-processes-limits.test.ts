import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { get, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { docker } from './support/docker.js';
import { call, createSession, exec } from './support/http.js';
import { NdjsonReader } from './support/ndjson-reader.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

/**
 * Issue 12's bounds against the real engine: clients that vanish mid-stream leave nothing
 * behind, output and watch floods stay bounded, and a sandbox that floods the worker with forged
 * frames loses its own session (410), never the worker.
 */

/**
 * Descriptors the agent holds, read from the host: it is the container's pid 1 and non-dumpable,
 * so code in the sandbox cannot list them.
 */
const agentFds = async (w: TestWorker, id: string): Promise<number> => {
  const containerId = w.worker.sessions.get(id).sandbox.id;
  const hostPid = (await docker('inspect', '-f', '{{.State.Pid}}', containerId)).trim();
  return (await readdir(`/proc/${hostPid}/fd`)).length;
};

async function settle(check: () => Promise<boolean> | boolean, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('background processes stay bounded', { timeout: 180_000 }, () => {
  let w: TestWorker;

  before(async () => {
    w = await startWorker({ poolSize: 2, processBufferBytes: 64 * 1024, maxProcesses: 4 });
  });
  after(() => w.close());

  test('clients that vanish mid-stream affect neither the process nor the worker', async () => {
    const id = await createSession(w.url);
    const { body: ticker } = await call<{ pid: number }>(
      w.url,
      'POST',
      `/v1/sessions/${id}/processes`,
      {
        command: 'while :; do echo tick; sleep 0.02; done',
        tag: 'ticker',
      },
    );
    await exec(w.url, id, { command: 'mkdir -p watched' });
    const fdsBefore = await agentFds(w, id);
    const serverConnections = () =>
      new Promise<number>((resolve, reject) =>
        w.worker.app.server.getConnections((error, count) =>
          error ? reject(error) : resolve(count),
        ),
      );
    const connectionsBefore = await serverConnections();
    // Clients that vanish: their connections are cut after the first bytes (a crash, a lost
    // network), never closed politely.
    const clients: ClientRequest[] = [];
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 15; i++) {
      for (const path of [`processes/ticker/output`, `files/watch?path=watched`]) {
        const client = get(`${w.url}/v1/sessions/${id}/${path}`);
        await new Promise<void>((resolve, reject) => {
          client.once('response', (response) => response.once('data', () => resolve()));
          client.once('error', reject);
        });
        clients.push(client);
      }
    }
    for (let i = 0; i < 5; i++) {
      const socket = new WebSocket(
        `${w.url.replace('http', 'ws')}/v1/sessions/${id}/processes/${ticker.pid}/pty`,
      );
      await new Promise((resolve) => socket.once('message', resolve));
      sockets.push(socket);
    }
    assert.ok((await agentFds(w, id)) >= fdsBefore + 15, 'each watch holds an inotify fd');
    for (const client of clients) client.destroy();
    for (const socket of sockets) socket.terminate();
    await settle(async () => (await agentFds(w, id)) <= fdsBefore, 'the agent closed every watch');
    await settle(async () => {
      const now = await serverConnections();
      return now <= connectionsBefore;
    }, 'the worker closed every client socket');
    const status = await call<{ running: boolean }>(
      w.url,
      'GET',
      `/v1/sessions/${id}/processes/ticker`,
    );
    assert.equal(status.body.running, true, 'the process outlives its clients');
    // Deleting the session ends the process and a stream still attached to it.
    const last = new NdjsonReader(
      await fetch(`${w.url}/v1/sessions/${id}/processes/ticker/output`),
    );
    await last.until((e) => e.type === 'stdout');
    assert.equal((await call(w.url, 'DELETE', `/v1/sessions/${id}`)).status, 204);
    const end = await last.until((e) => e.type === 'error' || e.type === 'exit');
    assert.equal(end.type, 'error');
    assert.equal(await last.next(), undefined);
    const gone = await call<{ error: { code: string } }>(
      w.url,
      'GET',
      `/v1/sessions/${id}/processes`,
    );
    assert.equal(gone.status, 404);
  });

  test('a process that writes without pause keeps only its tail; readers learn what they missed', async () => {
    const id = await createSession(w.url);
    const { body } = await call<{ pid: number }>(w.url, 'POST', `/v1/sessions/${id}/processes`, {
      argv: ['yes', 'a long line of output that repeats'],
    });
    await new Promise((r) => setTimeout(r, 1500));
    const health = await call(w.url, 'GET', '/health');
    assert.equal(health.status, 200);
    const reader = new NdjsonReader(
      await fetch(`${w.url}/v1/sessions/${id}/processes/${body.pid}/output`),
    );
    assert.equal((await reader.next())?.type, 'start');
    const truncated = await reader.next();
    assert.equal(truncated?.type, 'truncated');
    assert.ok(Number(truncated?.dropped_bytes) > 1024 * 1024, JSON.stringify(truncated));
    await reader.cancel();
    const killed = await call<{ exit_code: number }>(
      w.url,
      'DELETE',
      `/v1/sessions/${id}/processes/${body.pid}`,
    );
    assert.equal(killed.body.exit_code, 137);
    await call(w.url, 'DELETE', `/v1/sessions/${id}`);
  });

  test('the per-session process limit, and exited processes make room', async () => {
    const id = await createSession(w.url);
    const started: number[] = [];
    for (let i = 0; i < 4; i++) {
      const { status, body } = await call<{ pid: number }>(
        w.url,
        'POST',
        `/v1/sessions/${id}/processes`,
        {
          argv: ['sleep', '300'],
        },
      );
      assert.equal(status, 201);
      started.push(body.pid);
    }
    const refused = await call<{ error: { code: string; message: string } }>(
      w.url,
      'POST',
      `/v1/sessions/${id}/processes`,
      { argv: ['true'] },
    );
    assert.equal(refused.status, 400);
    assert.match(refused.body.error.message, /limit of 4 processes/);
    await call(w.url, 'DELETE', `/v1/sessions/${id}/processes/${started[0]}`);
    const again = await call(w.url, 'POST', `/v1/sessions/${id}/processes`, { argv: ['true'] });
    assert.equal(again.status, 201);
    await call(w.url, 'DELETE', `/v1/sessions/${id}`);
  });

  test('a watch over a burst of changes with a client that does not read stays bounded', async () => {
    const id = await createSession(w.url);
    await exec(w.url, id, { command: 'mkdir -p burst' });
    const response = await fetch(`${w.url}/v1/sessions/${id}/files/watch?path=burst`);
    const reader = new NdjsonReader(response);
    assert.equal((await reader.next())?.type, 'ready');
    // 60,000 events while nobody reads: the agent stops reading inotify, the kernel's queue
    // overflows, and the stream says so instead of the worker buffering it all.
    const burst = await exec(w.url, id, {
      argv: [
        'python3',
        '-c',
        'import os\nos.chdir("burst")\nfor i in range(20000):\n  open("f%d" % i, "w").close()\n  os.unlink("f%d" % i)',
      ],
      timeout_ms: 120_000,
    });
    assert.equal(burst.exit_code, 0);
    let overflow = false;
    let count = 0;
    for (;;) {
      const event = await reader.next(3000).catch(() => undefined);
      if (event === undefined) break;
      count++;
      if (event.type === 'overflow') overflow = true;
    }
    assert.ok(overflow || count >= 40_000, `overflow ${overflow}, ${count} events`);
    await reader.cancel();
    assert.equal((await call(w.url, 'GET', `/v1/sessions/${id}`)).status, 200);
    await call(w.url, 'DELETE', `/v1/sessions/${id}`);
  });
});

/**
 * Code that took over the agent's stdout (possible before the agent became a non-dumpable pid 1,
 * and still the model of a compromised agent) stands in as a relay image built here.
 */
describe('forged process frames', { timeout: 180_000 }, () => {
  const base = process.env.SANDPOOL_IMAGE ?? 'sandpool/sandbox:latest';
  const image = `sandpool/sandbox-forging:${randomBytes(4).toString('hex')}`;
  let w: TestWorker;

  before(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sandpool-forging-'));
    try {
      await copyFile(
        fileURLToPath(new URL('./fixtures/forging_agent.py', import.meta.url)),
        path.join(dir, 'forging_agent.py'),
      );
      await writeFile(
        path.join(dir, 'Dockerfile'),
        [
          `FROM ${base}`,
          'COPY forging_agent.py /opt/sandpool/forging_agent.py',
          'CMD ["python3", "-I", "-S", "-B", "/opt/sandpool/forging_agent.py"]',
        ].join('\n'),
      );
      await docker('build', '-q', '-t', image, dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const saved = process.env.SANDPOOL_IMAGE;
    process.env.SANDPOOL_IMAGE = image;
    try {
      w = await startWorker({ poolSize: 2 });
    } finally {
      if (saved === undefined) delete process.env.SANDPOOL_IMAGE;
      else process.env.SANDPOOL_IMAGE = saved;
    }
  });
  after(async () => {
    await w?.close();
    await docker('rmi', '-f', image).catch(() => undefined);
  });

  test('a compromised agent flooding a process channel ends that session (410), not the worker', async () => {
    const victim = await createSession(w.url);
    const bystander = await createSession(w.url);
    await call(w.url, 'POST', `/v1/sessions/${victim}/processes`, { argv: ['sleep', '300'] });
    // The victim's agent channel carries frames of process output for every plausible request
    // id, far beyond the window (fixtures/forging_agent.py, once /tmp/forge-now exists).
    await exec(w.url, victim, { command: 'touch /tmp/forge-now' });
    await settle(
      async () => (await call(w.url, 'GET', `/v1/sessions/${victim}/processes`)).status === 410,
      'the victim session answers 410',
    );
    assert.equal((await exec(w.url, bystander, { command: 'echo fine' })).stdout, 'fine\n');
    assert.equal((await call(w.url, 'GET', '/health')).status, 200);
    await call(w.url, 'DELETE', `/v1/sessions/${bystander}`);
  });
});

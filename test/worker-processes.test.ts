import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { loadCoordinatorConfig } from '../packages/server/src/config/coordinator-config.js';
import { Coordinator } from '../packages/server/src/coordinator/coordinator.js';
import { call, createSession, exec } from './support/http.js';
import { NdjsonReader } from './support/ndjson-reader.js';
import { TestRedis } from './support/redis-server.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

/**
 * Issue 12 against the real engine: background processes, their output replayed and followed,
 * stdin, signals, terminals over WebSocket, and directory watches; each case runs against the
 * worker directly and through a coordinator.
 */

interface Started {
  pid: number;
  tag: string | null;
  started_at: string;
}

async function start(base: string, id: string, body: Record<string, unknown>): Promise<Started> {
  const started = await call<Started>(base, 'POST', `/v1/sessions/${id}/processes`, body);
  assert.equal(started.status, 201, JSON.stringify(started.body));
  return started.body;
}

async function output(base: string, id: string, pid: number | string): Promise<NdjsonReader> {
  const response = await fetch(`${base}/v1/sessions/${id}/processes/${pid}/output`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'application/x-ndjson');
  return new NdjsonReader(response);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`waited ${ms} ms for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A terminal client: collects output text, sends keys and control messages. */
class Terminal {
  /** Every terminal a test opened, closed by the suites' `after` even when a test failed. */
  static readonly live = new Set<WebSocket>();
  text = '';
  readonly closed: Promise<number>;
  private readonly listeners = new Set<() => void>();
  readonly events: Record<string, unknown>[] = [];

  constructor(readonly socket: WebSocket) {
    Terminal.live.add(socket);
    socket.once('close', () => Terminal.live.delete(socket));
    socket.on('message', (data: Buffer, binary: boolean) => {
      if (binary) this.text += data.toString('utf8');
      else this.events.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
      for (const listener of this.listeners) listener();
    });
    this.closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
  }

  static async open(base: string, id: string, pid: number): Promise<Terminal> {
    const socket = new WebSocket(
      `${base.replace(/^http/, 'ws')}/v1/sessions/${id}/processes/${pid}/pty`,
    );
    const terminal = new Terminal(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return terminal;
  }

  keys(text: string): void {
    this.socket.send(Buffer.from(text), { binary: true });
  }

  control(message: object): void {
    this.socket.send(JSON.stringify(message));
  }

  /** Waits until the output since `from` matches. */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = 15_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.text.slice(from));
      if (match) return match;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no ${String(pattern)} in ${JSON.stringify(this.text.slice(from))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.listeners.add(done);
      });
      this.listeners.clear();
    }
  }
}

describe('background processes, terminals and watches', { timeout: 120_000 }, () => {
  let redis: TestRedis;
  let w: TestWorker;
  let coordinator: Coordinator;
  const bases: { name: string; url: string }[] = [];

  before(async () => {
    redis = await TestRedis.start();
    w = await startWorker({
      poolSize: 2,
      redisUrl: redis.url,
      heartbeatIntervalMs: 500,
      processBufferBytes: 64 * 1024,
    });
    coordinator = await Coordinator.create({
      ...loadCoordinatorConfig({}, {}),
      port: 0,
      redisUrl: redis.url,
      logLevel: process.env.SANDPOOL_TEST_LOG_LEVEL ?? 'silent',
    });
    const coordinatorUrl = await coordinator.listen();
    bases.push({ name: 'worker', url: w.url }, { name: 'coordinator', url: coordinatorUrl });
    // The coordinator places sessions once the worker's heartbeat is in Redis.
    const deadline = Date.now() + 15_000;
    while ((await call(coordinatorUrl, 'POST', '/v1/sessions', {})).status !== 201) {
      if (Date.now() > deadline) throw new Error('the coordinator found no worker');
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  after(async () => {
    for (const socket of Terminal.live) socket.terminate();
    await coordinator.close();
    await w.close();
    await redis.stop();
  });

  for (const via of ['worker', 'coordinator']) {
    const base = () => bases.find((b) => b.name === via)?.url ?? '';

    test(
      `${via}: a background http.server is reached by a later exec`,
      { timeout: 45_000 },
      async () => {
        const id = await createSession(base());
        const server = await start(base(), id, {
          command: 'python3 -m http.server 8000 --bind 127.0.0.1',
          tag: 'web',
        });
        assert.ok(server.pid > 1);
        assert.equal(server.tag, 'web');
        assert.ok(Date.parse(server.started_at) > Date.now() - 60_000);
        let answer = '';
        for (let i = 0; i < 50 && !answer.includes('Directory listing'); i++) {
          answer = (await exec(base(), id, { command: 'curl -s localhost:8000/' })).stdout;
          if (!answer) await new Promise((r) => setTimeout(r, 100));
        }
        assert.match(answer, /Directory listing/);
        const listed = await call<{ processes: { pid: number; running: boolean; tag: string }[] }>(
          base(),
          'GET',
          `/v1/sessions/${id}/processes`,
        );
        assert.deepEqual(
          listed.body.processes.map((p) => [p.pid, p.running, p.tag]),
          [[server.pid, true, 'web']],
        );
        // Found by tag as by pid; its log shows the request.
        const logs = await output(base(), id, 'web');
        await logs.until(() => logs.text().includes('"GET / HTTP/1.1" 200'));
        await logs.cancel();
        const killed = await call<{ running: boolean; exit_code: number }>(
          base(),
          'DELETE',
          `/v1/sessions/${id}/processes/web`,
        );
        assert.equal(killed.status, 200);
        assert.deepEqual([killed.body.running, killed.body.exit_code], [false, 137]);
        await call(base(), 'DELETE', `/v1/sessions/${id}`);
      },
    );

    test(
      `${via}: a second client sees the earlier output, then the live rest`,
      { timeout: 45_000 },
      async () => {
        const id = await createSession(base());
        const { pid } = await start(base(), id, {
          command: 'for i in 1 2 3; do echo early $i; done; read go; echo late $go; echo oops >&2',
          stdin: true,
        });
        const first = await output(base(), id, pid);
        await first.until((e) => String(e.data).includes('early 3'));
        const second = await output(base(), id, pid);
        await second.until((e) => String(e.data).includes('early 3'));
        assert.equal(second.text(), 'early 1\nearly 2\nearly 3\n');
        const stdin = await fetch(`${base()}/v1/sessions/${id}/processes/${pid}/stdin`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ data: 'now\n' }),
        });
        assert.equal(stdin.status, 204);
        for (const reader of [first, second]) {
          const exit = await reader.until((e) => e.type === 'exit');
          assert.equal(exit.exit_code, 0);
          assert.match(reader.text(), /late now\n/);
          assert.ok(reader.seen.some((e) => e.type === 'stderr' && e.data === 'oops\n'));
          assert.equal(await reader.next(), undefined);
        }
        // After the exit, status and output stay readable.
        const ended = await call<{ running: boolean; exit_code: number; ended_at: string }>(
          base(),
          'GET',
          `/v1/sessions/${id}/processes/${pid}`,
        );
        assert.deepEqual([ended.body.running, ended.body.exit_code], [false, 0]);
        const replay = await output(base(), id, pid);
        await replay.until((e) => e.type === 'exit');
        assert.match(replay.text(), /early 1\n[^]*late now\n/);
        await call(base(), 'DELETE', `/v1/sessions/${id}`);
      },
    );

    test(
      `${via}: stdin reaches cat and EOF ends it; SIGINT stops a process that handles it`,
      { timeout: 45_000 },
      async () => {
        const id = await createSession(base());
        const cat = await start(base(), id, { argv: ['cat'], stdin: true });
        const reader = await output(base(), id, cat.pid);
        const raw = await fetch(`${base()}/v1/sessions/${id}/processes/${cat.pid}/stdin`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          body: 'raw bytes\n',
        });
        assert.equal(raw.status, 204);
        await reader.until((e) => e.data === 'raw bytes\n');
        const eof = await call(base(), 'POST', `/v1/sessions/${id}/processes/${cat.pid}/stdin`, {
          data: 'last line\n',
          eof: true,
        });
        assert.equal(eof.status, 204);
        const exit = await reader.until((e) => e.type === 'exit');
        assert.equal(exit.exit_code, 0);
        assert.match(reader.text(), /raw bytes\nlast line\n$/);

        const handler = await start(base(), id, {
          argv: [
            'python3',
            '-u',
            '-c',
            'import signal,sys,time\n' +
              'signal.signal(signal.SIGINT, lambda *a: (print("got SIGINT"), sys.exit(3)))\n' +
              'print("ready")\n' +
              'time.sleep(600)',
          ],
          tag: 'trap',
        });
        const trap = await output(base(), id, 'trap');
        await trap.until(() => trap.text().includes('ready\n'));
        const sent = await call(
          base(),
          'POST',
          `/v1/sessions/${id}/processes/${handler.pid}/signal`,
          {
            signal: 'SIGINT',
          },
        );
        assert.equal(sent.status, 204);
        const trapped = await trap.until((e) => e.type === 'exit');
        assert.equal(trapped.exit_code, 3);
        assert.match(trap.text(), /got SIGINT/);
        await call(base(), 'DELETE', `/v1/sessions/${id}`);
      },
    );

    test(
      `${via}: a PTY runs python3 interactively, follows a resize, and runs vi`,
      { timeout: 45_000 },
      async () => {
        const id = await createSession(base());
        const shell = await start(base(), id, {
          argv: ['/bin/bash', '-i'],
          pty: { cols: 80, rows: 24 },
        });
        const term = await Terminal.open(base(), id, shell.pid);
        term.keys('stty size; echo TERM=$TERM\r');
        await term.waitFor(/24 80\r?\n[^]*TERM=xterm-256color/);
        let mark = term.text.length;
        term.control({ type: 'resize', cols: 132, rows: 40 });
        term.keys('stty size\r');
        await term.waitFor(/40 132/, mark);
        // The HTTP resize works too.
        const resized = await call(
          base(),
          'POST',
          `/v1/sessions/${id}/processes/${shell.pid}/resize`,
          {
            cols: 100,
            rows: 30,
          },
        );
        assert.equal(resized.status, 204);
        mark = term.text.length;
        term.keys('stty size\r');
        await term.waitFor(/30 100/, mark);

        mark = term.text.length;
        term.keys('python3 -q\r');
        await term.waitFor(/>>> /, mark);
        mark = term.text.length;
        term.keys('6 * 7\r');
        await term.waitFor(/42\r?\n>>> /, mark);
        term.keys('exit()\r');

        mark = term.text.length;
        term.keys('vi /tmp/note.txt\r');
        await term.waitFor(new RegExp(`${String.fromCharCode(27)}\\[`), mark); // vi draws the screen
        term.keys('ihello from vi');
        await term.waitFor(/hello from vi/, mark);
        term.keys('\x1b'); // alone, so vi does not wait to see if it starts a key sequence
        await new Promise((r) => setTimeout(r, 300));
        mark = term.text.length;
        term.keys(':wq\r');
        await term.waitFor(/sandboxuser@[^\n]*\$ $/, mark); // vi quit: the shell's prompt is back
        mark = term.text.length;
        term.keys('cat /tmp/note.txt\r');
        await term.waitFor(/[\r\n]hello from vi\r\n/, mark);
        term.keys('exit 5\r');
        assert.equal(await withTimeout(term.closed, 15_000, 'the terminal to close'), 1000);
        assert.deepEqual(
          { ...term.events.at(-1), ended_at: undefined },
          {
            type: 'exit',
            exit_code: 5,
            timed_out: false,
            ended_at: undefined,
          },
        );
        await call(base(), 'DELETE', `/v1/sessions/${id}`);
      },
    );

    test(
      `${via}: create, write, rename and remove yield their events in order`,
      { timeout: 45_000 },
      async () => {
        const id = await createSession(base());
        await exec(base(), id, { command: 'mkdir -p watched/sub' });
        const response = await fetch(
          `${base()}/v1/sessions/${id}/files/watch?path=watched&recursive=true`,
        );
        assert.equal(response.status, 200);
        const events = new NdjsonReader(response);
        assert.deepEqual(await events.next(), { type: 'ready', path: '/home/sandboxuser/watched' });
        await exec(base(), id, {
          command:
            'cd watched/sub && echo hi > a.txt && echo more >> a.txt && mv a.txt b.txt && rm b.txt',
        });
        const seen: [unknown, unknown][] = [];
        while (!seen.some(([type]) => type === 'remove')) {
          const event = await events.next();
          assert.ok(event);
          seen.push([event.type, event.name]);
          assert.equal(event.is_dir, false);
        }
        const order = ['create', 'write', 'rename', 'remove'];
        const firsts = order.map((type) => seen.findIndex(([t]) => t === type));
        assert.deepEqual(
          [...firsts].sort((a, b) => a - b),
          firsts,
          JSON.stringify(seen),
        );
        assert.deepEqual(seen[firsts[0] ?? 0], ['create', 'sub/a.txt']);
        assert.deepEqual(seen[firsts[2] ?? 0], ['rename', 'sub/a.txt']);
        assert.ok(seen.some(([t, n]) => t === 'create' && n === 'sub/b.txt'));
        assert.deepEqual(seen.at(-1), ['remove', 'sub/b.txt']);
        // Removing the watched directory ends the watch with a last event saying why.
        await exec(base(), id, { command: 'rm -rf watched' });
        const last = await events.until((e) => e.type === 'end');
        assert.match(String(last.reason), /removed/);
        assert.equal(await events.next(), undefined);
        await call(base(), 'DELETE', `/v1/sessions/${id}`);
      },
    );

    test(
      `${via}: unknown processes and bad requests answer with the error shape`,
      { timeout: 45_000 },
      async () => {
        const id = await createSession(base());
        const missing = await call<{ error: { code: string } }>(
          base(),
          'GET',
          `/v1/sessions/${id}/processes/4242`,
        );
        assert.equal(missing.status, 404);
        assert.equal(missing.body.error.code, 'process_not_found');
        const bad = await call<{ error: { code: string } }>(
          base(),
          'POST',
          `/v1/sessions/${id}/processes`,
          {
            command: 'true',
            argv: ['true'],
          },
        );
        assert.equal(bad.status, 400);
        const notDir = await fetch(`${base()}/v1/sessions/${id}/files/watch?path=/etc`);
        assert.equal(notDir.status, 400);
        const gone = await fetch(`${base()}/v1/sessions/${id}/files/watch?path=nowhere`);
        assert.equal(gone.status, 404);
        await call(base(), 'DELETE', `/v1/sessions/${id}`);
      },
    );
  }
});

describe('the terminal through a coordinator with API keys', { timeout: 120_000 }, () => {
  const KEY = 'proc-test-key';
  let redis: TestRedis;
  let w: TestWorker;
  let coordinator: Coordinator;
  let url: string;
  const auth = { authorization: `Bearer ${KEY}` };

  before(async () => {
    redis = await TestRedis.start();
    w = await startWorker({ poolSize: 1, redisUrl: redis.url, apiKey: KEY });
    coordinator = await Coordinator.create({
      ...loadCoordinatorConfig({}, {}),
      port: 0,
      redisUrl: redis.url,
      apiKey: KEY,
      workerApiKey: KEY,
      logLevel: process.env.SANDPOOL_TEST_LOG_LEVEL ?? 'silent',
    });
    url = await coordinator.listen();
  });
  after(async () => {
    for (const socket of Terminal.live) socket.terminate();
    await coordinator.close();
    await w.close();
    await redis.stop();
  });

  test('the WebSocket needs the key; with it, keys and output flow and the exit arrives', async () => {
    let id = '';
    const deadline = Date.now() + 15_000;
    while (id === '') {
      const created = await call<{ session_id: string }>(url, 'POST', '/v1/sessions', {}, auth);
      if (created.status === 201) id = created.body.session_id;
      else if (Date.now() > deadline) throw new Error('the coordinator found no worker');
      else await new Promise((r) => setTimeout(r, 200));
    }
    const started = await call<{ pid: number }>(
      url,
      'POST',
      `/v1/sessions/${id}/processes`,
      { argv: ['/bin/sh'], pty: { cols: 80, rows: 24 } },
      auth,
    );
    assert.equal(started.status, 201);
    const wsUrl = `${url.replace(/^http/, 'ws')}/v1/sessions/${id}/processes/${started.body.pid}/pty`;
    const refused = await new Promise<number | undefined>((resolve) => {
      const socket = new WebSocket(wsUrl);
      socket.once('unexpected-response', (_req, response) => {
        resolve(response.statusCode);
        socket.terminate();
      });
      socket.once('open', () => resolve(101));
      socket.once('error', () => undefined);
    });
    assert.equal(refused, 401);
    const missing = await new Promise<number | undefined>((resolve) => {
      const socket = new WebSocket(
        `${url.replace(/^http/, 'ws')}/v1/sessions/${id}/processes/999999/pty`,
        {
          headers: auth,
        },
      );
      socket.once('unexpected-response', (_req, response) => {
        resolve(response.statusCode);
        socket.terminate();
      });
      socket.once('open', () => resolve(101));
      socket.once('error', () => undefined);
    });
    assert.equal(missing, 404);
    const socket = new WebSocket(wsUrl, { headers: auth });
    const term = new Terminal(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    term.keys('echo $((6 * 7)); exit 4\r');
    await term.waitFor(/42/);
    assert.equal(await withTimeout(term.closed, 15_000, 'the terminal to close'), 1000);
    assert.equal(term.events.at(-1)?.exit_code, 4);
    await call(url, 'DELETE', `/v1/sessions/${id}`, undefined, auth);
  });
});

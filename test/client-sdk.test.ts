import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  AuthError,
  CapacityError,
  ConnectionError,
  FileNotFoundError,
  InvalidPathError,
  InvalidRequestError,
  PayloadTooLargeError,
  Sandbox,
  SandboxError,
  SandpoolClient,
  SessionNotFoundError,
  type ConnectionOptions,
  type ExecEvent,
} from '@sandpool/client';
import { startWorker, type TestWorker } from './support/worker-harness.js';
import { containersOf } from './support/docker.js';
import { freePort } from './support/ports.js';

/**
 * @sandpool/client against a real worker and real Docker: every SDK method, `await using`, and
 * the mapping of the API's errors to typed exceptions.
 */

const MiB = 1024 * 1024;
const API_KEY = `sdk-test-${randomBytes(12).toString('hex')}`;

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('@sandpool/client against a worker', () => {
  let w: TestWorker;
  let conn: ConnectionOptions;
  let client: SandpoolClient;
  let sandbox: Sandbox;
  let scratch: string;

  before(async () => {
    w = await startWorker({
      apiKey: API_KEY,
      poolSize: 2,
      maxSessions: 6,
      uploadLimitBytes: 24 * MiB,
    });
    conn = { url: w.url, apiKey: API_KEY };
    client = new SandpoolClient(conn);
    sandbox = await Sandbox.create(conn);
    scratch = await mkdtemp(join(tmpdir(), 'sandpool-sdk-'));
  });

  after(async () => {
    await sandbox?.close();
    // Every test closed what it opened.
    const left = client === undefined ? [] : await client.listSessions();
    await rm(scratch, { recursive: true, force: true });
    await w?.close();
    assert.deepEqual(left, [], 'sessions left open');
    assert.deepEqual(await containersOf(w.workerId), [], 'containers left after close');
  });

  test('a session is created, described, kept alive, found, reconnected and closed', async () => {
    const created = await Sandbox.create({
      ...conn,
      ttlSeconds: 120,
      metadata: { test: 'lifecycle' },
    });
    assert.match(created.sessionId, /^sb_[0-9a-f]{32}$/);
    assert.equal(created.workerId, w.workerId);
    assert.equal(created.url, w.url);

    const info = await created.info();
    assert.equal(info.sessionId, created.sessionId);
    assert.deepEqual(info.metadata, { test: 'lifecycle' });
    assert.equal(info.expiresAt.getTime() - info.createdAt.getTime(), 120_000);

    const kept = await created.keepAlive(600);
    assert.ok(kept.expiresAt.getTime() > info.expiresAt.getTime());

    const listed = await client.listSessions();
    assert.ok(listed.some((s) => s.sessionId === created.sessionId));
    assert.equal((await client.getSession(created.sessionId)).workerId, w.workerId);

    const again = await Sandbox.connect(created.sessionId, conn);
    assert.equal((await again.exec('echo reconnected')).stdout, 'reconnected\n');

    await Promise.all([created.close(), created.close()]);
    await created.close();
    assert.equal(created.closed, true);
    await assert.rejects(created.exec('true'), SessionNotFoundError);
    // The other handle sees the server's answer: the session is gone.
    await assert.rejects(again.info(), (e: unknown) => {
      assert.ok(e instanceof SessionNotFoundError);
      assert.equal(e.status, 404);
      return true;
    });
    await again.close(); // already gone: quiet
    await assert.rejects(Sandbox.connect(created.sessionId, conn), SessionNotFoundError);
  });

  test('await using closes the session when the block ends', async () => {
    let id = '';
    {
      await using scoped = await Sandbox.create(conn);
      id = scoped.sessionId;
      assert.equal((await scoped.exec('whoami')).stdout, 'sandboxuser\n');
    }
    await assert.rejects(client.getSession(id), SessionNotFoundError);
  });

  test('exec runs shell strings and argv with cwd, env, stdin, exit codes and timeouts', async () => {
    const shell = await sandbox.exec('echo out; echo err >&2; exit 3');
    assert.deepEqual(
      { ...shell, durationMs: 0 },
      {
        stdout: 'out\n',
        stderr: 'err\n',
        exitCode: 3,
        durationMs: 0,
        timedOut: false,
        truncated: false,
      },
    );
    assert.equal((await sandbox.exec(['printf', '%s|', 'a b', '$HOME'])).stdout, 'a b|$HOME|');
    assert.equal((await sandbox.exec('pwd', { cwd: '/tmp' })).stdout, '/tmp\n');
    assert.equal(
      (await sandbox.exec('echo "$X"', { env: { X: 'from env' } })).stdout,
      'from env\n',
    );
    assert.equal((await sandbox.exec('tr a-z A-Z', { stdin: 'shout\n' })).stdout, 'SHOUT\n');

    const slow = await sandbox.exec('sleep 30', { timeoutMs: 500 });
    assert.equal(slow.timedOut, true);
    assert.ok(slow.durationMs < 10_000, `took ${slow.durationMs} ms`);
  });

  test('execStream yields output while the command runs, then its exit', async () => {
    const started = Date.now();
    const seen: { event: ExecEvent; atMs: number }[] = [];
    for await (const event of sandbox.execStream('echo first; sleep 1; echo second >&2; exit 4')) {
      seen.push({ event, atMs: Date.now() - started });
    }
    assert.deepEqual(
      seen.map(({ event }) => (event.type === 'exit' ? `exit ${event.exitCode}` : event.type)),
      ['stdout', 'stderr', 'exit 4'],
    );
    const [first, , last] = seen;
    assert.ok(first !== undefined && last !== undefined);
    assert.ok(
      last.atMs - first.atMs >= 700,
      `first output came ${first.atMs} ms in, exit ${last.atMs}`,
    );

    const chunks: string[] = [];
    const errors: string[] = [];
    const result = await sandbox.exec('for i in 1 2 3; do echo $i; done; echo oops >&2', {
      onStdout: (data) => chunks.push(data),
      onStderr: (data) => errors.push(data),
    });
    assert.equal(chunks.join(''), '1\n2\n3\n');
    assert.equal(errors.join(''), 'oops\n');
    assert.equal(result.stdout, '1\n2\n3\n');
    assert.equal(result.exitCode, 0);
  });

  test('leaving an execStream early ends the command in the sandbox', async () => {
    for await (const event of sandbox.execStream('echo started; exec sleep 77')) {
      assert.equal(event.type, 'stdout');
      break;
    }
    const deadline = Date.now() + 10_000;
    let running = '';
    do {
      running = (await sandbox.exec('pgrep -fx "sleep 77" || true')).stdout.trim();
      if (running === '') break;
      await new Promise((r) => setTimeout(r, 200));
    } while (Date.now() < deadline);
    assert.equal(running, '', 'the abandoned command still runs');
  });

  test('execBatch runs commands in order and can stop at the first failure', async () => {
    const all = await sandbox.execBatch(['echo a', 'false', 'echo c']);
    assert.deepEqual(
      all.map((r) => [r.stdout, r.exitCode]),
      [
        ['a\n', 0],
        ['', 1],
        ['c\n', 0],
      ],
    );
    const stopped = await sandbox.execBatch(['echo a', 'exit 7', 'echo never'], {
      stopOnError: true,
    });
    assert.deepEqual(
      stopped.map((r) => r.exitCode),
      [0, 7],
    );
  });

  test('files are written from text, bytes, streams and iterables, then read, listed and removed', async () => {
    const text = await sandbox.writeFile('sdk/text.txt', 'héllo\n');
    assert.deepEqual(text, { path: '/home/sandboxuser/sdk/text.txt', size: 7 });
    await sandbox.writeFile('sdk/bytes.bin', new Uint8Array([0, 1, 2, 255]));
    await sandbox.writeFile('sdk/node.txt', Readable.from(['a', 'b', 'c']));
    await sandbox.writeFile(
      '/tmp/web.txt',
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('web '));
          controller.enqueue(new TextEncoder().encode('stream'));
          controller.close();
        },
      }),
    );

    assert.equal(await sandbox.readTextFile('sdk/text.txt'), 'héllo\n');
    assert.equal(await sandbox.readFile('sdk/text.txt', { format: 'text' }), 'héllo\n');
    assert.deepEqual([...(await sandbox.readFile('sdk/bytes.bin'))], [0, 1, 2, 255]);
    assert.equal(await sandbox.readTextFile('sdk/node.txt'), 'abc');
    const parts: string[] = [];
    for await (const chunk of await sandbox.readFileStream('/tmp/web.txt')) {
      parts.push(new TextDecoder().decode(chunk));
    }
    assert.equal(parts.join(''), 'web stream');

    await sandbox.exec('mkdir -p sdk/sub && chmod 640 sdk/text.txt');
    const entries = await sandbox.listFiles('sdk');
    const byName = new Map(entries.map((e) => [e.name, e]));
    assert.deepEqual([...byName.keys()].sort(), ['bytes.bin', 'node.txt', 'sub', 'text.txt']);
    assert.equal(byName.get('text.txt')?.type, 'file');
    assert.equal(byName.get('text.txt')?.size, 7);
    assert.equal(byName.get('text.txt')?.mode, 0o640);
    assert.ok((byName.get('text.txt')?.mtime.getTime() ?? 0) > Date.now() - 600_000);
    assert.equal(byName.get('sub')?.type, 'directory');

    await sandbox.removeFile('sdk/bytes.bin');
    await assert.rejects(sandbox.readFile('sdk/bytes.bin'), FileNotFoundError);
    await sandbox.exec('rm -rf sdk /tmp/web.txt');
  });

  test('a 20 MiB random file round-trips through uploadFile and downloadFile', async () => {
    const local = join(scratch, 'big.bin');
    await writeFile(local, randomBytes(20 * MiB));
    const up = await sandbox.uploadFile(local, 'big/big.bin');
    assert.deepEqual(up, { path: '/home/sandboxuser/big/big.bin', size: 20 * MiB });
    const inside = await sandbox.exec('sha256sum big/big.bin');
    const expected = await sha256File(local);
    assert.ok(inside.stdout.startsWith(expected), inside.stdout);

    const back = join(scratch, 'back.bin');
    const down = await sandbox.downloadFile('big/big.bin', back);
    assert.deepEqual(down, { path: back, size: 20 * MiB });
    assert.equal(await sha256File(back), expected);

    // The default remote name is the local one, in the home.
    const named = await sandbox.uploadFile(local);
    assert.equal(named.path, '/home/sandboxuser/big.bin');
    await sandbox.exec('rm -rf big big.bin');
  });

  test('API errors arrive as typed SandboxErrors', async () => {
    await assert.rejects(Sandbox.create({ url: w.url, apiKey: 'not-the-key-0000' }), (e) => {
      assert.ok(e instanceof AuthError);
      assert.equal(e.code, 'unauthorized');
      assert.equal(e.status, 401);
      return true;
    });
    await assert.rejects(Sandbox.connect(`sb_${'0'.repeat(32)}`, conn), (e) => {
      assert.ok(e instanceof SessionNotFoundError);
      assert.equal(e.status, 404);
      return true;
    });
    await assert.rejects(sandbox.readFile('no/such/file'), (e) => {
      assert.ok(e instanceof FileNotFoundError);
      assert.equal(e.code, 'file_not_found');
      return true;
    });
    await assert.rejects(sandbox.writeFile('../../etc/passwd', 'x'), (e) => {
      assert.ok(e instanceof InvalidPathError);
      assert.equal(e.status, 400);
      return true;
    });
    await assert.rejects(sandbox.keepAlive(0), InvalidRequestError);
    await assert.rejects(sandbox.writeFile('huge.bin', new Uint8Array(25 * MiB)), (e) => {
      assert.ok(e instanceof PayloadTooLargeError);
      assert.equal(e.status, 413);
      return true;
    });
    // A streamed upload over the limit is refused too, and the session still works after it.
    const local = join(scratch, 'huge.bin');
    await writeFile(local, new Uint8Array(25 * MiB));
    await assert.rejects(sandbox.uploadFile(local), PayloadTooLargeError);
    assert.equal((await sandbox.exec('ls huge.bin 2>/dev/null; echo ok')).stdout, 'ok\n');
  });

  test('no server at the URL is a ConnectionError naming it and how to start one', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    await assert.rejects(Sandbox.create({ url }), (e) => {
      assert.ok(e instanceof ConnectionError);
      assert.ok(e instanceof SandboxError);
      assert.equal(e.code, 'connection_failed');
      assert.equal(e.status, undefined);
      assert.ok(e.url.startsWith(url), e.url);
      assert.match(e.message, /ECONNREFUSED/);
      assert.match(e.message, /npx sandpool serve/);
      return true;
    });
  });

  test('health reports the worker', async () => {
    const health = await client.health();
    assert.equal(health.status, 'healthy');
    assert.equal(health.worker_id, w.workerId);
    assert.equal(typeof health.pool_size, 'number');
  });
});

describe('@sandpool/client when the worker is full', () => {
  test('create fails fast with CapacityError, and retries until a session frees up', async () => {
    const full = await startWorker({ poolSize: 1, maxSessions: 1 });
    try {
      const conn = { url: full.url };
      const first = await Sandbox.create(conn);
      await assert.rejects(Sandbox.create({ ...conn, createTimeoutMs: 0 }), (e) => {
        assert.ok(e instanceof CapacityError);
        assert.equal(e.status, 503);
        assert.ok((e.retryAfterMs ?? 0) > 0, `retryAfterMs ${e.retryAfterMs}`);
        return true;
      });
      const started = Date.now();
      const freeing = new Promise((resolve) => setTimeout(resolve, 1500)).then(() => first.close());
      const second = await Sandbox.create({ ...conn, createTimeoutMs: 30_000 });
      await freeing;
      assert.ok(Date.now() - started >= 1400, 'the second session came before the first closed');
      assert.equal((await second.exec('echo in')).stdout, 'in\n');
      await second.close();
    } finally {
      await full.close();
    }
    assert.deepEqual(await containersOf(full.workerId), [], 'containers left after close');
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FileNotFoundError,
  FileType,
  FilesystemEventType,
  InvalidArgumentError,
  Sandbox,
  type FilesystemEvent,
} from 'e2b';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import {
  agentDescriptorCount,
  eventually,
  openWatchesAndFollowers,
  useE2bServer,
} from './e2b-env.js';

// envd's filesystem API (Connect, JSON) on a real worker, driven by the published `e2b` SDK,
// unmodified; the polled-watcher RPCs, which the SDK does not call, as plain Connect unary JSON.

describe('E2B files through envd Connect on a worker', { timeout: 90_000 }, () => {
  let worker: TestWorker;
  let sandbox: Sandbox;
  const apiKey = 'e2b-connect-fs-test-key';
  const home = '/home/sandboxuser';

  before(async () => {
    worker = await startWorker({ poolSize: 1, apiKey });
    useE2bServer(worker.url, apiKey);
    sandbox = await Sandbox.create({ timeoutMs: 120_000 });
  });

  after(async () => {
    await sandbox?.kill().catch(() => undefined);
    await worker?.close();
  });

  test('makeDir, exists, list with depth, getInfo', async () => {
    assert.equal(await sandbox.files.makeDir('tree/a/b'), true);
    assert.equal(await sandbox.files.makeDir('tree/a/b'), false, 'already there');
    await sandbox.commands.run(
      'printf 12345 > tree/a/b/five.txt && chmod 640 tree/a/b/five.txt && ln -s a/b/five.txt tree/link',
    );
    assert.equal(await sandbox.files.exists('tree/a/b/five.txt'), true);
    assert.equal(await sandbox.files.exists('tree/nothing'), false);

    const top = await sandbox.files.list('tree');
    assert.deepEqual(top.map((e) => [e.name, e.type]).sort(), [
      ['a', FileType.DIR],
      ['link', FileType.SYMLINK],
    ]);
    const deep = await sandbox.files.list(`${home}/tree`, { depth: 3 });
    assert.deepEqual(
      deep.map((e) => e.path),
      [`${home}/tree/a`, `${home}/tree/link`, `${home}/tree/a/b`, `${home}/tree/a/b/five.txt`],
    );

    const info = await sandbox.files.getInfo('tree/a/b/five.txt');
    assert.equal(info.name, 'five.txt');
    assert.equal(info.type, FileType.FILE);
    assert.equal(info.path, `${home}/tree/a/b/five.txt`);
    assert.equal(info.size, 5);
    assert.equal(info.mode, 0o640);
    assert.equal(info.permissions, '-rw-r-----');
    assert.equal(info.owner, 'sandboxuser');
    assert.ok(info.modifiedTime instanceof Date);
    assert.ok(Math.abs(info.modifiedTime.getTime() - Date.now()) < 60_000);
    const link = await sandbox.files.getInfo('tree/link');
    assert.equal(link.type, FileType.SYMLINK);
    assert.equal(link.symlinkTarget, 'a/b/five.txt');
  });

  test('write (HTTP /files), then rename, read and remove', async () => {
    const written = await sandbox.files.write('mv/from.txt', 'data\n');
    assert.equal(written.path, `${home}/mv/from.txt`);
    const moved = await sandbox.files.rename('mv/from.txt', '/tmp/elsewhere/to.txt');
    assert.equal(moved.path, '/tmp/elsewhere/to.txt');
    assert.equal(moved.type, FileType.FILE);
    assert.equal(await sandbox.files.exists('mv/from.txt'), false);
    assert.equal(await sandbox.files.read('/tmp/elsewhere/to.txt'), 'data\n');
    await sandbox.files.remove('/tmp/elsewhere/to.txt');
    await sandbox.files.remove('/tmp/elsewhere');
    assert.equal(await sandbox.files.exists('/tmp/elsewhere'), false);
  });

  test('missing paths and paths outside the sandbox map to the SDK’s exceptions', async () => {
    await assert.rejects(sandbox.files.getInfo('no/such/file'), FileNotFoundError);
    await assert.rejects(sandbox.files.list('no/such/dir'), FileNotFoundError);
    await assert.rejects(sandbox.files.remove('no/such/file'), FileNotFoundError);
    await assert.rejects(sandbox.files.rename('no/such/file', 'x'), FileNotFoundError);
    await assert.rejects(sandbox.files.list('/etc'), InvalidArgumentError);
    await assert.rejects(sandbox.files.makeDir('/etc/x'), InvalidArgumentError);
    await assert.rejects(
      sandbox.files.makeDir('x', { user: 'root' }),
      (error: unknown) => error instanceof InvalidArgumentError && /root/.test(error.message),
    );
    // The HTTP file routes refuse root as the Connect ones do.
    for (const attempt of [
      () => sandbox.files.write('as-root.txt', 'x', { user: 'root' }),
      () => sandbox.files.read('as-root.txt', { user: 'root' }),
    ]) {
      await assert.rejects(
        attempt(),
        (error: unknown) => error instanceof InvalidArgumentError && /root/.test(error.message),
      );
    }
  });

  test('watchDir sees creates, writes and removes, recursively', async () => {
    await sandbox.files.makeDir('watched/sub');
    const events: FilesystemEvent[] = [];
    const handle = await sandbox.files.watchDir('watched', (event) => void events.push(event), {
      recursive: true,
    });
    try {
      await sandbox.commands.run('echo one > watched/new.txt; echo two > watched/sub/deep.txt');
      await sandbox.commands.run('rm watched/new.txt');
      const has = (name: string, type: FilesystemEventType) =>
        events.some((e) => e.name === name && e.type === type);
      await eventually(
        () =>
          has('new.txt', FilesystemEventType.CREATE) &&
          has('new.txt', FilesystemEventType.WRITE) &&
          has('new.txt', FilesystemEventType.REMOVE) &&
          has('sub/deep.txt', FilesystemEventType.CREATE),
        `events ${JSON.stringify(events)}`,
      );
    } finally {
      await handle.stop();
    }
    await assert.rejects(
      sandbox.files.watchDir('no/such/dir', () => undefined),
      FileNotFoundError,
    );
  });

  test('polled watchers: create, get events, remove (Connect unary JSON)', async () => {
    const info = await sandbox.getInfo();
    const rpc = async (method: string, body: object) => {
      const response = await fetch(`${worker.url}/e2b/sandbox/filesystem.Filesystem/${method}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'connect-protocol-version': '1',
          'e2b-sandbox-id': info.sandboxId,
          'e2b-sandbox-port': '49983',
          'x-access-token': worker.worker.sessions.get(info.sandboxId).accessToken,
        },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    await sandbox.files.makeDir('polled');
    const created = await rpc('CreateWatcher', { path: 'polled' });
    assert.equal(created.status, 200);
    const watcherId = created.body.watcherId as string;
    await sandbox.commands.run('touch polled/a.txt');
    let names: string[] = [];
    await eventually(async () => {
      const got = await rpc('GetWatcherEvents', { watcherId });
      names.push(
        ...((got.body.events ?? []) as { name: string; type: string }[]).map(
          (e) => `${e.type}:${e.name}`,
        ),
      );
      return names.includes('EVENT_TYPE_CREATE:a.txt');
    }, 'the polled watcher saw a.txt');
    names = [];
    assert.deepEqual((await rpc('GetWatcherEvents', { watcherId })).body, {}, 'drained');
    assert.equal((await rpc('RemoveWatcher', { watcherId })).status, 200);
    const gone = await rpc('GetWatcherEvents', { watcherId });
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'not_found');
  });

  test('a request message over 16 MiB is refused, the sandbox unharmed', async () => {
    const response = await fetch(`${worker.url}/e2b/sandbox/filesystem.Filesystem/Stat`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'connect-protocol-version': '1',
        'e2b-sandbox-id': sandbox.sandboxId,
        'e2b-sandbox-port': '49983',
        'x-access-token': worker.worker.sessions.get(sandbox.sandboxId).accessToken,
      },
      body: JSON.stringify({ path: 'x'.repeat(17 * 1024 * 1024) }),
    });
    assert.equal(response.status, 429);
    assert.equal(((await response.json()) as { code: string }).code, 'resource_exhausted');
    assert.equal(await sandbox.files.exists('tree'), true);
  });

  test('clients that drop watch and output streams leave nothing behind', async () => {
    const agentFds = await agentDescriptorCount(worker, sandbox.sandboxId);
    const connections = () =>
      new Promise<number>((resolve, reject) =>
        worker.worker.app.server.getConnections((error, count) =>
          error ? reject(error) : resolve(count),
        ),
      );
    const { ticker, open } = await openWatchesAndFollowers(sandbox, 'dropped', 8);
    const fdsBefore = await agentFds();
    const drop = await open();
    assert.ok((await agentFds()) >= fdsBefore + 8, 'each watch holds an inotify descriptor');
    const connectionsOpen = await connections();
    await drop();
    await eventually(async () => (await agentFds()) <= fdsBefore, 'the agent closed every watch');
    await eventually(
      async () => (await connections()) <= connectionsOpen - 16,
      'the worker closed every dropped stream',
    );
    const listed = await sandbox.commands.list();
    assert.ok(
      listed.some((p) => p.pid === ticker.pid),
      'the process runs on without its readers',
    );
    assert.equal(await sandbox.commands.kill(ticker.pid), true);
  });
});

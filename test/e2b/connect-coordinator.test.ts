import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CommandExitError,
  FileNotFoundError,
  FilesystemEventType,
  Sandbox,
  type FilesystemEvent,
} from 'e2b';
import { startCluster, type TestCluster } from '../support/cluster-harness.js';
import {
  agentDescriptorCount,
  eventually,
  openWatchesAndFollowers,
  useE2bServer,
} from './e2b-env.js';

// envd's Connect services through a coordinator (which proxies the E2B sandbox scope to the
// owning worker, streaming), driven by the published `e2b` SDK configured by its three variables.

describe('E2B commands, PTY and files through a coordinator', { timeout: 90_000 }, () => {
  let cluster: TestCluster;
  let sandbox: Sandbox;
  const apiKey = 'e2b-connect-coordinator-test-key';

  before(async () => {
    cluster = await startCluster({ poolSize: 1 }, apiKey);
    useE2bServer(cluster.url, apiKey);
    sandbox = await Sandbox.create({ timeoutMs: 120_000 });
  });

  after(async () => {
    await sandbox?.kill().catch(() => undefined);
    await cluster?.close();
  });

  test('commands: foreground, stdin, a failure, background with connect and kill', async () => {
    const result = await sandbox.commands.run('echo "$A" && cd && pwd', { envs: { A: 'via' } });
    assert.equal(result.stdout, 'via\n/home/sandboxuser\n');
    await assert.rejects(
      sandbox.commands.run('exit 4'),
      (error: unknown) => error instanceof CommandExitError && error.exitCode === 4,
    );
    const cat = await sandbox.commands.run('cat', { background: true, stdin: true });
    await cat.sendStdin('through the coordinator\n');
    await cat.closeStdin();
    assert.equal((await cat.wait()).stdout, 'through the coordinator\n');

    const ticker = await sandbox.commands.run('while :; do echo tick; sleep 0.1; done', {
      background: true,
      timeoutMs: 0,
    });
    await ticker.disconnect();
    let seen = '';
    const again = await sandbox.commands.connect(ticker.pid, { onStdout: (d) => void (seen += d) });
    await eventually(() => seen.includes('tick'), 'live output through the coordinator');
    assert.ok((await sandbox.commands.list()).some((p) => p.pid === ticker.pid));
    assert.equal(await again.kill(), true);
    await assert.rejects(again.wait(), CommandExitError);
  });

  test('pty: input, resize, kill', async () => {
    let screen = '';
    const decoder = new TextDecoder();
    const terminal = await sandbox.pty.create({
      cols: 80,
      rows: 24,
      onData: (data) => void (screen += decoder.decode(data, { stream: true })),
    });
    await sandbox.pty.resize(terminal.pid, { cols: 120, rows: 40 });
    await sandbox.pty.sendInput(terminal.pid, new TextEncoder().encode('stty size\n'));
    await eventually(
      () => /\b40 120\b/.test(screen),
      `stty size 40 120 in ${JSON.stringify(screen)}`,
    );
    assert.equal(await sandbox.pty.kill(terminal.pid), true);
  });

  test('files: write, read, makeDir, list, getInfo, rename, remove, watchDir', async () => {
    await sandbox.files.write('c/written.txt', 'hello');
    assert.equal(await sandbox.files.read('c/written.txt'), 'hello');
    await sandbox.files.remove('c/written.txt');
    assert.equal(await sandbox.files.makeDir('c/d'), true);
    const events: FilesystemEvent[] = [];
    const watch = await sandbox.files.watchDir('c', (e) => void events.push(e));
    try {
      await sandbox.commands.run('echo x > c/new.txt');
      await eventually(
        () => events.some((e) => e.name === 'new.txt' && e.type === FilesystemEventType.CREATE),
        'a watch event through the coordinator',
      );
    } finally {
      await watch.stop();
    }
    assert.deepEqual((await sandbox.files.list('c')).map((e) => e.name).sort(), ['d', 'new.txt']);
    assert.equal((await sandbox.files.getInfo('c/new.txt')).size, 2);
    await sandbox.files.rename('c/new.txt', 'c/d/moved.txt');
    await sandbox.files.remove('c');
    await assert.rejects(sandbox.files.getInfo('c/d/moved.txt'), FileNotFoundError);
  });

  test('watches and followers dropped at the coordinator end on the worker too', async () => {
    const agentFds = await agentDescriptorCount(cluster.worker, sandbox.sandboxId);
    const { ticker, open } = await openWatchesAndFollowers(sandbox, 'dropped', 4);
    const fdsBefore = await agentFds();
    const drop = await open();
    assert.ok((await agentFds()) >= fdsBefore + 4, 'each watch holds an inotify descriptor');
    await drop();
    await eventually(async () => (await agentFds()) <= fdsBefore, 'the agent closed every watch');
    assert.equal(await sandbox.commands.kill(ticker.pid), true);
  });
});

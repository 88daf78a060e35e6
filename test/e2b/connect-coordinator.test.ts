import { after, before, describe, test } from 'node:test';
import { readdir } from 'node:fs/promises';
import assert from 'node:assert/strict';
import {
  CommandExitError,
  FileNotFoundError,
  FilesystemEventType,
  Sandbox,
  type FilesystemEvent,
} from 'e2b';
import { loadCoordinatorConfig } from '../../packages/server/src/config/coordinator-config.js';
import { Coordinator } from '../../packages/server/src/coordinator/coordinator.js';
import { docker } from '../support/docker.js';
import { TestRedis } from '../support/redis-server.js';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { useE2bServer, eventually } from './e2b-env.js';

// envd's Connect services through a coordinator (which proxies the E2B sandbox scope to the
// owning worker, streaming), driven by the published `e2b` SDK configured by its three variables.

describe('E2B commands, PTY and files through a coordinator', { timeout: 90_000 }, () => {
  let redis: TestRedis;
  let worker: TestWorker;
  let coordinator: Coordinator;
  let sandbox: Sandbox;
  const apiKey = 'e2b-connect-coordinator-test-key';

  before(async () => {
    redis = await TestRedis.start();
    worker = await startWorker({
      poolSize: 1,
      apiKey,
      redisUrl: redis.url,
      heartbeatIntervalMs: 500,
    });
    coordinator = await Coordinator.create({
      ...loadCoordinatorConfig({}, {}),
      port: 0,
      apiKey,
      redisUrl: redis.url,
      logLevel: process.env.SANDPOOL_TEST_LOG_LEVEL ?? 'silent',
    });
    const url = await coordinator.listen();
    await eventually(async () => {
      const health = (await (await fetch(`${url}/health`)).json()) as {
        workers?: { healthy: boolean }[];
      };
      return (health.workers ?? []).some((w) => w.healthy);
    }, 'the worker registered');
    useE2bServer(url, apiKey);
    sandbox = await Sandbox.create({ timeoutMs: 120_000 });
  });

  after(async () => {
    await sandbox?.kill().catch(() => undefined);
    await coordinator?.close();
    await worker?.close();
    await redis?.stop();
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
    const session = worker.worker.sessions.get(sandbox.sandboxId);
    const hostPid = (await docker('inspect', '-f', '{{.State.Pid}}', session.sandbox.id)).trim();
    const agentFds = async () => (await readdir(`/proc/${hostPid}/fd`)).length;
    await sandbox.files.makeDir('dropped');
    const ticker = await sandbox.commands.run('while :; do echo tick; sleep 0.05; done', {
      background: true,
      timeoutMs: 0,
    });
    await ticker.disconnect();
    const fdsBefore = await agentFds();
    const watches = [];
    const followers = [];
    for (let i = 0; i < 4; i++) {
      watches.push(await sandbox.files.watchDir('dropped', () => undefined));
      followers.push(await sandbox.commands.connect(ticker.pid, { onStdout: () => undefined }));
    }
    assert.ok((await agentFds()) >= fdsBefore + 4, 'each watch holds an inotify descriptor');
    for (const watch of watches) await watch.stop();
    for (const follower of followers) await follower.disconnect();
    await eventually(async () => (await agentFds()) <= fdsBefore, 'the agent closed every watch');
    assert.equal(await sandbox.commands.kill(ticker.pid), true);
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandExitError, InvalidArgumentError, NotFoundError, Sandbox, TimeoutError } from 'e2b';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { useE2bServer, eventually } from './e2b-env.js';

// envd's process API (Connect, JSON) on a real worker, driven by the published `e2b` SDK,
// unmodified, configured by the three environment variables only.

describe('E2B commands and PTY through envd Connect on a worker', { timeout: 90_000 }, () => {
  let worker: TestWorker;
  let sandbox: Sandbox;
  const apiKey = 'e2b-connect-process-test-key';

  before(async () => {
    worker = await startWorker({ poolSize: 1, apiKey });
    useE2bServer(worker.url, apiKey);
    sandbox = await Sandbox.create({ timeoutMs: 120_000 });
  });

  after(async () => {
    await sandbox?.kill().catch(() => undefined);
    await worker?.close();
  });

  test('run in the foreground with envs and cwd, as the sandbox user', async () => {
    const result = await sandbox.commands.run('echo "$GREETING"; pwd; whoami; echo oops >&2', {
      envs: { GREETING: 'hello from e2b' },
      cwd: '/tmp',
    });
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, 'hello from e2b\n/tmp\nsandboxuser\n');
    assert.equal(result.stderr, 'oops\n');
  });

  test('a failing command raises CommandExitError with its code and output', async () => {
    await assert.rejects(
      sandbox.commands.run('echo partial; echo bad >&2; exit 3'),
      (error: unknown) =>
        error instanceof CommandExitError &&
        error.exitCode === 3 &&
        error.stdout === 'partial\n' &&
        error.stderr === 'bad\n' &&
        /exit status 3/.test(error.error ?? ''),
    );
  });

  test('timeoutMs ends the command with a TimeoutError, and the process is gone', async () => {
    const started = Date.now();
    await assert.rejects(
      sandbox.commands.run('sleep 30; echo never', { timeoutMs: 1_500 }),
      TimeoutError,
    );
    assert.ok(Date.now() - started < 10_000);
    await eventually(async () => {
      const listed = await sandbox.commands.list();
      return !listed.some((p) => p.args.join(' ').includes('sleep 30'));
    }, 'the timed-out command was killed');
  });

  test('stdin: sendStdin and closeStdin reach a background command', async () => {
    const cat = await sandbox.commands.run('cat', { background: true, stdin: true });
    await cat.sendStdin('line one\n');
    await sandbox.commands.sendStdin(cat.pid, 'line two\n');
    await cat.closeStdin();
    const result = await cat.wait();
    assert.equal(result.stdout, 'line one\nline two\n');
  });

  test('background: list, disconnect, connect again, kill', async () => {
    const seen: string[] = [];
    const ticker = await sandbox.commands.run(
      'for i in $(seq 1 300); do echo tick $i; sleep 0.1; done',
      { background: true, timeoutMs: 0, onStdout: (line) => void seen.push(line) },
    );
    await eventually(() => seen.length > 0, 'first output');
    const listed = await sandbox.commands.list();
    const mine = listed.find((p) => p.pid === ticker.pid);
    assert.ok(mine, 'listed');
    assert.equal(mine.cmd, '/bin/bash');
    assert.deepEqual(mine.args.slice(0, 2), ['-l', '-c']);
    await ticker.disconnect();

    const again: string[] = [];
    const attached = await sandbox.commands.connect(ticker.pid, {
      onStdout: (data) => void again.push(data),
    });
    await eventually(() => again.join('').includes('tick'), 'output after connect');
    assert.equal(await attached.kill(), true);
    await assert.rejects(attached.wait(), CommandExitError);
    assert.equal(await sandbox.commands.kill(ticker.pid), false, 'an exited process is not found');
    assert.ok(!(await sandbox.commands.list()).some((p) => p.pid === ticker.pid));
  });

  test('unknown pids and root map to the SDK’s exceptions', async () => {
    assert.equal(await sandbox.commands.kill(999_999), false);
    await assert.rejects(sandbox.commands.connect(999_999), NotFoundError);
    await assert.rejects(sandbox.commands.sendStdin(999_999, 'x'), NotFoundError);
    await assert.rejects(
      sandbox.commands.run('whoami', { user: 'root' }),
      (error: unknown) =>
        error instanceof InvalidArgumentError && /cannot act as "root"/.test(error.message),
    );
  });

  test('pty: create, onData, sendInput, resize (stty size), kill', async () => {
    let screen = '';
    const decoder = new TextDecoder();
    const terminal = await sandbox.pty.create({
      cols: 80,
      rows: 24,
      onData: (data) => void (screen += decoder.decode(data, { stream: true })),
    });
    const input = (text: string) =>
      sandbox.pty.sendInput(terminal.pid, new TextEncoder().encode(text));
    await input('stty size\n');
    await eventually(
      () => /\b24 80\b/.test(screen),
      `stty size 24 80 in ${JSON.stringify(screen)}`,
    );
    await sandbox.pty.resize(terminal.pid, { cols: 100, rows: 30 });
    await input('stty size\n');
    await eventually(
      () => /\b30 100\b/.test(screen),
      `stty size 30 100 in ${JSON.stringify(screen)}`,
    );
    assert.equal(await sandbox.pty.kill(terminal.pid), true);
    await assert.rejects(terminal.wait(), CommandExitError);
    await assert.rejects(sandbox.pty.resize(999_999, { cols: 10, rows: 10 }), NotFoundError);
  });
});

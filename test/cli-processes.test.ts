import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { call, createSession } from './support/http.js';
import { runProcess, type Run } from './support/run-process.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

/**
 * `sandpool ps`, `logs`, `kill` and `shell` as users run them; the shell is driven through a
 * real terminal (tmux, on a private server socket), like a person typing.
 */

const CLI = new URL('../packages/server/dist/cli/main.js', import.meta.url).pathname;
const run = promisify(execFile);

describe('process commands of the CLI', { timeout: 180_000 }, () => {
  let w: TestWorker;
  let id: string;
  const cli = (...args: string[]): Promise<Run> =>
    runProcess(process.execPath, [CLI, ...args, '--url', w.url], {
      env: { PATH: process.env.PATH ?? '' },
    });

  before(async () => {
    w = await startWorker({ poolSize: 2 });
    id = await createSession(w.url);
  });
  after(() => w.close());

  test('ps lists, logs replays and follows, kill ends a process', async () => {
    const started = await call<{ pid: number }>(w.url, 'POST', `/v1/sessions/${id}/processes`, {
      command: 'echo hello from the background; sleep 300',
      tag: 'bg',
    });
    const ps = await cli('ps', '--session', id, '--json');
    assert.equal(ps.code, 0, ps.stderr);
    const listed = (
      JSON.parse(ps.stdout) as { processes: { pid: number; tag: string; running: boolean }[] }
    ).processes;
    assert.deepEqual(
      listed.map((p) => [p.pid, p.tag, p.running]),
      [[started.body.pid, 'bg', true]],
    );
    const table = await cli('ps', '--session', id);
    assert.match(table.stdout, /^PID\s+TAG\s+STATUS/);
    assert.match(table.stdout, /bg\s+running/);

    let logs: Run | undefined;
    for (let i = 0; i < 50 && !logs?.stdout.includes('hello'); i++) {
      logs = await cli('logs', 'bg', '--session', id);
      assert.equal(logs.code, 0, logs.stderr);
    }
    assert.equal(logs?.stdout, 'hello from the background\n');

    const finite = await call<{ pid: number }>(w.url, 'POST', `/v1/sessions/${id}/processes`, {
      command: 'for i in 1 2 3; do echo line $i; sleep 0.2; done; exit 4',
    });
    const followed = await cli('logs', String(finite.body.pid), '--session', id, '--follow');
    assert.equal(followed.stdout, 'line 1\nline 2\nline 3\n');
    assert.equal(followed.code, 4, 'logs --follow exits with the process’s code');

    const killed = await cli('kill', 'bg', '--session', id);
    assert.equal(killed.code, 0, killed.stderr);
    assert.match(killed.stdout, /killed \(exit code 137\)/);
    const missing = await cli('kill', '999999', '--session', id);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /process_not_found/);
  });

  test('sandpool shell works in a real terminal: raw keys, resize, exit code, terminal restored', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sandpool-shell-'));
    const socket = `sandpool-test-${randomBytes(4).toString('hex')}`;
    const tmux = (...args: string[]) => run('tmux', ['-L', socket, ...args]);
    const screen = async () => (await tmux('capture-pane', '-p', '-t', 'shell')).stdout;
    const waitFor = async (pattern: RegExp, what: string) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const text = await screen();
        if (pattern.test(text)) return text;
        if (Date.now() > deadline) throw new Error(`${what}: not on screen:\n${text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      const script = [
        `stty -g > ${dir}/before`,
        `${process.execPath} ${CLI} shell --url ${w.url}`,
        `echo EXIT=$?`,
        `stty -g > ${dir}/after`,
        'sleep 600',
      ].join('; ');
      await tmux('new-session', '-d', '-s', 'shell', '-x', '100', '-y', '30', script);
      await waitFor(/sandboxuser@[^\n]*\$\s*$/m, 'the prompt');
      await tmux('send-keys', '-t', 'shell', 'whoami; stty size', 'Enter');
      await waitFor(/^sandboxuser\n30 100$/m, 'whoami and the size');
      // A window resize reaches the shell as SIGWINCH, then the sandbox's terminal.
      await tmux('resize-window', '-t', 'shell', '-x', '120', '-y', '40');
      await new Promise((r) => setTimeout(r, 500));
      await tmux('send-keys', '-t', 'shell', 'clear; stty size', 'Enter');
      await waitFor(/^40 120$/m, 'the new size');
      // Ctrl-C goes to the sandbox (raw mode), not to the CLI.
      // Each key waits for what a person would wait for: typed ahead of a running command, the
      // line discipline flushes pending input on ^C, which made this test drop characters.
      await tmux('send-keys', '-t', 'shell', 'sleep 100', 'Enter');
      await waitFor(/sleep 100\n\s*$/, 'the running sleep');
      await new Promise((r) => setTimeout(r, 300));
      await tmux('send-keys', '-t', 'shell', 'C-c');
      await waitFor(/\^C\n[^\n]*\$\s*$/, 'a fresh prompt after Ctrl-C');
      await tmux('send-keys', '-t', 'shell', 'echo still here', 'Enter');
      await waitFor(/^still here$/m, 'the shell after Ctrl-C');
      await tmux('send-keys', '-t', 'shell', 'exit 3', 'Enter');
      await waitFor(/^EXIT=3$/m, 'the exit code');
      await waitFor(/EXIT=3/, 'the restored terminal');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(
        await readFile(`${dir}/after`, 'utf8'),
        await readFile(`${dir}/before`, 'utf8'),
        'the terminal is restored',
      );
      // The session the shell opened for itself is closed.
      const sessions = await call<{ sessions: { session_id: string }[] }>(
        w.url,
        'GET',
        '/v1/sessions',
      );
      assert.deepEqual(
        sessions.body.sessions.map((s) => s.session_id),
        [id],
      );
    } finally {
      await tmux('kill-server').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ProcessNotFoundError, Sandbox, type WatchEvent } from '@sandpool/client';
import { createSandboxTools } from '@sandpool/langchain';
import { runProcess } from './support/run-process.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

/** Issue 12 from the clients: the TypeScript SDK and the Python client against a real worker. */

const PYTHON_CLIENT_DIR = new URL('../clients/python/', import.meta.url).pathname;

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('processes, terminals and watches from the clients', { timeout: 120_000 }, () => {
  let w: TestWorker;
  let sandbox: Sandbox;

  before(async () => {
    w = await startWorker({ poolSize: 2 });
    sandbox = await Sandbox.create({ url: w.url });
  });
  after(async () => {
    await sandbox.close();
    await w.close();
  });

  test('SDK: start, list, get, connect, sendStdin, signal, kill', async () => {
    const started = await sandbox.processes.start(
      'echo first; read line; echo got $line; sleep 300',
      {
        tag: 'reader',
        stdin: true,
      },
    );
    assert.equal(started.tag, 'reader');
    const listed = await sandbox.processes.list();
    assert.deepEqual(
      listed.map((p) => [p.pid, p.running]),
      [[started.pid, true]],
    );
    let out = '';
    const connection = sandbox.processes.connect('reader', { onStdout: (d) => (out += d) });
    await until(() => out.includes('first'), 'the earlier output');
    await sandbox.processes.sendStdin(started.pid, 'hello\n');
    await until(() => out.includes('got hello'), 'the answer to stdin');
    await sandbox.processes.signal('reader', 'SIGTERM');
    const exit = await connection.wait();
    assert.equal(exit.exitCode, 143);
    const info = await sandbox.processes.get(started.pid);
    assert.deepEqual([info.running, info.exitCode], [false, 143]);
    const sleeper = await sandbox.processes.start(['sleep', '300']);
    const killed = await sandbox.processes.kill(sleeper.pid);
    assert.equal(killed.exitCode, 137);
    await assert.rejects(sandbox.processes.get(424242), ProcessNotFoundError);
    const events = [];
    for await (const event of sandbox.processes.output(sleeper.pid)) events.push(event.type);
    assert.deepEqual(events, ['exit']);
  });

  test('SDK: pty.create with onData and the async iterator, resize, sendInput', async () => {
    let seen = '';
    const term = await sandbox.pty.create({ cols: 80, rows: 24, onData: (d) => (seen += d) });
    await sandbox.pty.sendInput(term.pid, 'stty size\r');
    await until(() => seen.includes('24 80'), 'the size');
    await term.resize({ cols: 90, rows: 33 });
    await term.sendInput('stty size; exit 2\r');
    let iterated = '';
    for await (const data of term) iterated += data;
    assert.match(iterated, /33 90/);
    assert.equal((await term.wait()).exitCode, 2);
  });

  test('SDK: files.watch sees changes and the end', async () => {
    await sandbox.exec('mkdir -p seen');
    const events: WatchEvent[] = [];
    const watch = await sandbox.files.watch('seen', (e) => events.push(e), { recursive: true });
    await sandbox.writeFile('seen/x.txt', 'x');
    await sandbox.exec('chmod 600 seen/x.txt; mkdir seen/d');
    await until(() => events.some((e) => e.name === 'd' && e.isDir), 'the directory event');
    assert.ok(events.some((e) => e.type === 'chmod' && e.name === 'x.txt'));
    await sandbox.exec('rm -rf seen');
    assert.match(await watch.done, /removed/);
    const stopped = await sandbox.files.watch('/tmp', () => undefined);
    stopped.stop();
    assert.equal(await stopped.done, 'stopped');
  });

  test('Python client: start, list, output, kill', async () => {
    const source = [
      'from sandpool_client import SandboxClient',
      `c = SandboxClient(url=${JSON.stringify(w.url)}, session_id=${JSON.stringify(sandbox.sessionId)})`,
      'p = c.start_process("echo py one; echo py two; sleep 300", tag="py")',
      'print("started", p["tag"])',
      'print("listed", [x["running"] for x in c.list_processes() if x["tag"] == "py"])',
      'import time',
      'for _ in range(100):',
      '    text = "".join(e.get("data", "") for e in c.process_output("py", follow=False))',
      '    if "py two" in text: break',
      '    time.sleep(0.05)',
      'print("output", repr(text))',
      'print("killed", c.kill_process("py")["exit_code"])',
      'print("events", [e["type"] for e in c.process_output(p["pid"])][-1])',
    ].join('\n');
    const run = await runProcess('/usr/bin/python3', ['-c', source], {
      cwd: PYTHON_CLIENT_DIR,
      env: { PATH: process.env.PATH ?? '', PYTHONDONTWRITEBYTECODE: '1' },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.stdout.trim().split('\n'), [
      'started py',
      'listed [True]',
      "output 'py one\\npy two\\n'",
      'killed 137',
      'events exit',
    ]);
  });

  test('MCP: start_process runs a server a later run_command reaches; process_output shows its log', async () => {
    const client = new Client({ name: 'process-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${w.url}/mcp`)));
    const call = async (name: string, args: Record<string, unknown>) => {
      const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
      const first = result.content[0];
      return { text: first?.type === 'text' ? first.text : '', isError: result.isError === true };
    };
    try {
      const started = await call('start_process', {
        command: 'python3 -m http.server 8123 --bind 127.0.0.1',
        tag: 'web',
      });
      assert.match(started.text, /^started pid \d+ \(tag web\)/);
      let reached = '';
      for (let i = 0; i < 50 && !reached.includes('Directory listing'); i++) {
        reached = (await call('run_command', { command: 'curl -s localhost:8123/' })).text;
        if (!reached.includes('Directory listing')) await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(reached, /Directory listing/);
      const log = await call('process_output', { process: 'web', wait_seconds: 1 });
      assert.match(log.text, /state: running/);
      assert.match(log.text, /"GET \/ HTTP\/1.1" 200/);
      const finite = await call('start_process', { command: 'echo done; exit 3' });
      const pid = /pid (\d+)/.exec(finite.text)?.[1] ?? '';
      const ended = await call('process_output', { process: pid, wait_seconds: 10 });
      assert.match(ended.text, /state: exited with code 3\noutput:\ndone/);
      const missing = await call('process_output', { process: 'nothing-here' });
      assert.equal(missing.isError, true);
    } finally {
      await client.close();
    }
  });

  test('LangChain: sandbox_start_process and sandbox_process_output', async () => {
    const toolkit = await createSandboxTools({ sandbox });
    assert.deepEqual(
      toolkit.processTools.map((t) => t.name),
      ['sandbox_start_process', 'sandbox_process_output'],
    );
    const started = String(
      await toolkit.startProcessTool.invoke({
        command: 'echo from langchain; sleep 1; echo bye',
        tag: 'lc',
      }),
    );
    assert.match(started, /^started pid \d+ \(tag lc\)/);
    const output = String(
      await toolkit.processOutputTool.invoke({ process: 'lc', wait_seconds: 10 }),
    );
    assert.match(output, /state: exited with code 0\noutput:\nfrom langchain\nbye/);
    await toolkit.close(); // leaves the caller's sandbox open
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ContextNotFoundError, Sandbox } from '@sandpool/client';
import { createSandboxTools } from '@sandpool/langchain';
import { loadCoordinatorConfig } from '../packages/server/src/config/coordinator-config.js';
import { Coordinator } from '../packages/server/src/coordinator/coordinator.js';
import { codeInterpreterImage, pngSize } from './support/code-image.js';
import { containersOf } from './support/docker.js';
import { TestRedis } from './support/redis-server.js';
import { runProcess } from './support/run-process.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

// The code interpreter through every face that reaches it: the coordinator (a worker with Redis
// behind it), the SDK, the CLI, MCP (with images as image content), the LangChain tool and the
// Python client. The real kernel in the real image, as in code-interpreter.test.ts.

const CLI = new URL('../packages/server/dist/cli/main.js', import.meta.url).pathname;
const PYTHON_CLIENT_DIR = new URL('../clients/python/', import.meta.url).pathname;
const PLOT = 'import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nprint("plotted")\n6 * 7';

async function eventually<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 150; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within 15 s`);
}

describe('code interpreter faces', () => {
  let redis: TestRedis;
  let worker: TestWorker;
  let coordinator: Coordinator;
  let url: string; // the coordinator's
  let sandbox: Sandbox; // through the coordinator

  before(async () => {
    assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
    redis = await TestRedis.start();
    worker = await startWorker({
      image: await codeInterpreterImage(),
      poolSize: 2,
      redisUrl: redis.url,
      heartbeatIntervalMs: 500,
    });
    coordinator = await Coordinator.create({
      ...loadCoordinatorConfig({}, {}),
      port: 0,
      redisUrl: redis.url,
      logLevel: 'silent',
    });
    url = await coordinator.listen();
    await eventually(async () => {
      const health = (await (await fetch(`${url}/health`)).json()) as { workers?: unknown[] };
      return (health.workers?.length ?? 0) > 0 ? true : undefined;
    }, 'the worker registers');
    sandbox = await Sandbox.create({ url, ttlSeconds: 600 });
  });

  after(async () => {
    await sandbox?.close();
    await coordinator?.close();
    await worker?.close();
    await redis?.stop();
    assert.deepEqual(await containersOf(worker.workerId), []);
  });

  test('SDK through the coordinator: state, streamed output, a PNG, an error', async () => {
    await sandbox.runCode('rows = [1, 2, 3]', { timeoutMs: 120_000 });
    assert.equal((await sandbox.runCode('sum(rows)')).text, '6');

    const stdout: string[] = [];
    const seen: string[] = [];
    const plotted = await sandbox.runCode(PLOT, {
      timeoutMs: 120_000,
      onStdout: (data) => stdout.push(data),
      onResult: (result) => seen.push(result.png === undefined ? 'text' : 'png'),
    });
    assert.deepEqual(stdout, ['plotted\n']);
    assert.equal(plotted.text, '42');
    assert.deepEqual(seen.sort(), ['png', 'text']);
    const png = plotted.results.find((r) => r.png !== undefined)?.png ?? '';
    assert.ok(pngSize(png).width > 100);

    const failed = await sandbox.runCode('rows[10]');
    assert.equal(failed.error?.name, 'IndexError');
    const looped = await sandbox.runCode('while True: pass', { timeoutMs: 1000 });
    assert.deepEqual([looped.error?.name, looped.error?.timedOut], ['TimeoutError', true]);
    assert.equal((await sandbox.runCode('len(rows)')).text, '3', 'variables survive');
  });

  test('SDK contexts through the coordinator', async () => {
    const context = await sandbox.createCodeContext({ language: 'bash' });
    assert.equal(context.language, 'bash');
    await sandbox.runCode('COUNT=41', { context });
    assert.equal(
      (await sandbox.runCode('echo $((COUNT + 1))', { context })).logs.stdout.join(''),
      '42\n',
    );
    assert.ok((await sandbox.listCodeContexts()).some((c) => c.id === context.id));
    await sandbox.restartCodeContext(context);
    assert.equal(
      (await sandbox.runCode('echo "[$COUNT]"', { context })).logs.stdout.join(''),
      '[]\n',
    );
    await sandbox.removeCodeContext(context);
    await assert.rejects(sandbox.runCode('true', { context }), ContextNotFoundError);
  });

  test('CLI run-code prints text results and saves images', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sandpool-run-code-'));
    try {
      const run = await runProcess(
        process.execPath,
        [CLI, 'run-code', '--url', url, '--session', sandbox.sessionId, '--out-dir', dir, '-'],
        {},
        PLOT,
      );
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^plotted\n42\nsaved .*\.png\n$/);
      const [file] = await readdir(dir);
      const bytes = await readFile(join(dir, file));
      assert.ok(pngSize(bytes.toString('base64')).height > 100);

      const failed = await runProcess(
        process.execPath,
        [CLI, 'run-code', '--url', url, '--session', sandbox.sessionId, '-'],
        {},
        'raise ValueError("nope")',
      );
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, /ValueError: nope/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('MCP run_code answers text and the figure as image content', async () => {
    const client = new Client({ name: 'sandpool-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${worker.url}/mcp`)));
    try {
      const tools = await client.listTools();
      assert.ok(tools.tools.some((t) => t.name === 'run_code'));
      await client.callTool({
        name: 'run_code',
        arguments: { code: 'n = 5', timeout_seconds: 120 },
      });
      const result = (await client.callTool({
        name: 'run_code',
        arguments: { code: `${PLOT}\nn * 2`, timeout_seconds: 120 },
      })) as CallToolResult;
      assert.notEqual(result.isError, true, JSON.stringify(result.content).slice(0, 500));
      const [first, ...rest] = result.content;
      assert.equal(first.type, 'text');
      assert.match(first.type === 'text' ? first.text : '', /result:\n10/);
      const image = rest.find((c) => c.type === 'image');
      assert.ok(image !== undefined && image.type === 'image');
      assert.equal(image.mimeType, 'image/png');
      assert.ok(pngSize(image.data).width > 100);

      const failed = (await client.callTool({
        name: 'run_code',
        arguments: { code: 'n / 0' },
      })) as CallToolResult;
      assert.equal(failed.isError, true);
      assert.match(JSON.stringify(failed.content), /ZeroDivisionError/);
    } finally {
      await client.close();
    }
  });

  test('LangChain run_code: text a model can read, images described not dumped', async () => {
    await using toolkit = await createSandboxTools({ sandbox });
    const answer: string = await toolkit.runCodeTool.invoke({ code: PLOT, timeout_seconds: 120 });
    assert.match(answer, /stdout:\nplotted/);
    assert.match(answer, /\[image\/png image \d+x\d+ px, \d+ bytes; not shown as text\]/);
    assert.match(answer, /result:\n42/);
    assert.ok(!answer.includes('iVBORw0KGgo'), 'no base64 PNG in the text');
  });

  test('Python client run_code through the coordinator', async () => {
    const script = [
      'import json, sys',
      'from sandpool_client import SandboxClient',
      `with SandboxClient(url=${JSON.stringify(url)}) as box:`,
      '    box.run_code("total = 40", timeout_ms=120000)',
      '    printed = []',
      '    streamed = box.run_code("print(1)\\ntotal + 2", on_stdout=printed.append)',
      '    ctx = box.create_code_context()',
      '    other = box.run_code("\'total\' in globals()", context_id=ctx["context_id"], timeout_ms=120000)',
      '    json.dump({"main": streamed["results"][0]["text"], "printed": printed,',
      '               "other": other["results"][0]["text"]}, sys.stdout)',
    ].join('\n');
    const run = await runProcess('/usr/bin/python3', ['-c', script], {
      cwd: PYTHON_CLIENT_DIR,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1' },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { main: '42', printed: ['1\n'], other: 'False' });
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { Sandbox, SandpoolClient } from '@sandpool/client';
import { SandpoolSandbox, SandpoolSandboxError } from '@sandpool/langchain/deepagents';
import { createDeepAgent } from 'deepagents';
import { loadCoordinatorConfig } from '../packages/server/src/config/coordinator-config.js';
import { Coordinator } from '../packages/server/src/coordinator/coordinator.js';
import { createSandboxDeepAgent, demoModel } from '../examples/deep-agent.js';
import { callTool, ScriptedChatModel } from '../examples/scripted-chat-model.js';
import { containersOf } from './support/docker.js';
import { runTracingModules } from './support/module-trace.js';
import { TestRedis } from './support/redis-server.js';
import { until } from './support/until.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

/**
 * The Deep Agents backend of `@sandpool/langchain` on real sandboxes: `createDeepAgent` from the
 * published `deepagents` package, driven by a scripted chat model (no network), runs its own
 * tools (write_file, execute, read_file, edit_file, glob, grep) in a sandbox, and the test checks
 * the sandbox's real state through a second client. Then the backend on its own (binary files,
 * the per-file error codes, ls/grep/glob, reconnect, close) against a worker and a coordinator.
 */

const HOME = '/home/sandboxuser';
const GREET_PY =
  'import sys\nprint("hello from deep agents")\nprint("to stderr", file=sys.stderr)\n';

/** Each tool call's answer as text (read_file answers with content blocks). */
function toolResults(messages: readonly BaseMessage[]): Map<string, string> {
  return new Map(
    messages
      .filter((m): m is ToolMessage => m instanceof ToolMessage)
      .map((m) => [m.tool_call_id, m.text]),
  );
}

/** Every byte value, and bytes that are not UTF-8, so a text round trip would show. */
function binaryPayload(): Uint8Array {
  const bytes = new Uint8Array(70_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 8)) & 0xff;
  bytes.set([0xff, 0xfe, 0x00, 0xc3, 0x28], 0);
  return bytes;
}

test('deepagents is an optional peer: only the /deepagents entry loads it', async () => {
  const load = async (entry: string) => {
    const run = await runTracingModules('-e', [
      `import(${JSON.stringify(entry)}).then((m) => console.log(Object.keys(m).sort().join(' ')))`,
    ]);
    assert.equal(run.code, 0, run.stderr);
    return { exports: run.stdout.trim().split(' '), loaded: run.loaded };
  };
  const tools = await load('@sandpool/langchain');
  assert.ok(tools.exports.includes('createSandboxTools'));
  assert.ok(!tools.loaded.some((url) => url.includes('/node_modules/deepagents/')));
  const backend = await load('@sandpool/langchain/deepagents');
  assert.deepEqual(backend.exports, [
    'SandpoolSandbox',
    'SandpoolSandboxError',
    'fileOperationErrorOf',
  ]);
  assert.ok(backend.loaded.some((url) => url.includes('/node_modules/deepagents/')));
});

describe('Deep Agents backend on sandpool', { timeout: 120_000 }, () => {
  let redis: TestRedis;
  let w: TestWorker;
  let coordinator: Coordinator;
  let coordinatorUrl: string;
  let api: SandpoolClient;

  before(async () => {
    redis = await TestRedis.start();
    w = await startWorker({
      poolSize: 1,
      maxSessions: 4,
      redisUrl: redis.url,
      heartbeatIntervalMs: 500,
    });
    api = new SandpoolClient({ url: w.url });
    coordinator = await Coordinator.create({
      ...loadCoordinatorConfig({}, {}),
      port: 0,
      redisUrl: redis.url,
      logLevel: 'silent',
    });
    coordinatorUrl = await coordinator.listen();
    await until(
      async () => {
        const health = (await (await fetch(`${coordinatorUrl}/health`)).json()) as {
          workers?: unknown[];
        };
        return (health.workers?.length ?? 0) > 0;
      },
      15_000,
      'the worker registering with the coordinator',
    );
  });

  after(async () => {
    await coordinator?.close();
    await w?.close();
    await redis?.stop();
    assert.deepEqual(await containersOf(w.workerId), [], 'containers left behind');
  });

  test('createDeepAgent writes, runs, reads and edits code in the sandbox', async () => {
    await using backend = await SandpoolSandbox.create({ url: w.url, ttlSeconds: 300 });
    const model = new ScriptedChatModel([
      () => callTool('write_file', { file_path: `${HOME}/app/greet.py`, content: GREET_PY }, 'w1'),
      () =>
        callTool(
          'execute',
          { command: 'cd app && python3 greet.py > out.txt && cat out.txt && whoami && exit 3' },
          'x1',
        ),
      () => callTool('read_file', { file_path: `${HOME}/app/out.txt` }, 'r1'),
      () =>
        callTool(
          'edit_file',
          { file_path: `${HOME}/app/greet.py`, old_string: 'hello', new_string: 'goodbye' },
          'e1',
        ),
      () => callTool('execute', { command: 'python3 -u app/greet.py 2>&1' }, 'x2'),
      () => callTool('glob', { pattern: '**/*.py', path: HOME }, 'g1'),
      () => callTool('grep', { pattern: 'goodbye', path: `${HOME}/app` }, 'g2'),
      () => callTool('read_file', { file_path: `${HOME}/app/missing.txt` }, 'r2'),
      (messages) => {
        const ran = toolResults(messages).get('x2') ?? '';
        return new AIMessage(`The edited script prints: ${ran.split('\n')[0]}`);
      },
    ]);
    const agent = createDeepAgent({ model, backend });
    const { messages } = await agent.invoke({
      messages: [new HumanMessage('Write a greeting script, run it, then make it say goodbye.')],
    });

    for (const name of ['execute', 'write_file', 'read_file', 'edit_file', 'ls', 'glob', 'grep']) {
      assert.ok(model.boundTools.includes(name), `${name} in ${model.boundTools.join(', ')}`);
    }
    assert.equal(model.played, 9);
    const results = toolResults(messages);
    assert.equal(results.get('w1'), `Successfully wrote to '${HOME}/app/greet.py'`);
    // stdout and stderr together, in order, then the exit code as Deep Agents words it.
    assert.equal(
      results.get('x1'),
      'to stderr\nhello from deep agents\nsandboxuser\n\n[Command failed with exit code 3]',
    );
    assert.equal(results.get('r1'), '@@ lines 1-1 of 1 @@\n     1\thello from deep agents');
    assert.equal(
      results.get('e1'),
      `Successfully replaced 1 occurrence(s) in '${HOME}/app/greet.py'`,
    );
    assert.equal(
      results.get('x2'),
      'goodbye from deep agents\nto stderr\n\n[Command succeeded with exit code 0]',
    );
    assert.match(results.get('g1') ?? '', /app\/greet\.py/);
    assert.match(results.get('g2') ?? '', /greet\.py/);
    assert.match(results.get('g2') ?? '', /goodbye from deep agents/);
    assert.match(results.get('r2') ?? '', /not found/);
    assert.equal(messages.at(-1)?.text, 'The edited script prints: goodbye from deep agents');

    // What the agent did, seen by another client of the same session.
    const observer = await Sandbox.connect(backend.id, { url: w.url });
    assert.equal(await observer.readTextFile('app/greet.py'), GREET_PY.replace('hello', 'goodbye'));
    assert.equal(await observer.readTextFile('app/out.txt'), 'hello from deep agents\n');
  });

  test('upload and download: binary round trip and a code per failed file', async () => {
    await using backend = await SandpoolSandbox.create({ url: w.url, ttlSeconds: 300 });
    const payload = binaryPayload();
    await backend.execute(`mkdir -p ${HOME}/dir ${HOME}/locked && chmod 555 ${HOME}/locked`);

    const uploaded = await backend.uploadFiles([
      [`${HOME}/bin/data.bin`, payload],
      ['/tmp/note.txt', new TextEncoder().encode('in tmp\n')],
      [`${HOME}/dir`, payload],
      ['/etc/evil', payload],
      [`${HOME}/locked/x.txt`, payload],
    ]);
    assert.deepEqual(uploaded, [
      { path: `${HOME}/bin/data.bin`, error: null },
      { path: '/tmp/note.txt', error: null },
      { path: `${HOME}/dir`, error: 'is_directory' },
      { path: '/etc/evil', error: 'invalid_path' },
      { path: `${HOME}/locked/x.txt`, error: 'permission_denied' },
    ]);
    const sha = await backend.execute(`sha256sum ${HOME}/bin/data.bin`);
    const { createHash } = await import('node:crypto');
    assert.equal(sha.output.split(' ')[0], createHash('sha256').update(payload).digest('hex'));

    const downloaded = await backend.downloadFiles([
      `${HOME}/bin/data.bin`,
      `${HOME}/nope.txt`,
      `${HOME}/dir`,
      '/etc/passwd',
      '/tmp/note.txt',
    ]);
    assert.deepEqual(
      downloaded.map((d) => [d.path, d.error]),
      [
        [`${HOME}/bin/data.bin`, null],
        [`${HOME}/nope.txt`, 'file_not_found'],
        [`${HOME}/dir`, 'is_directory'],
        ['/etc/passwd', 'invalid_path'],
        ['/tmp/note.txt', null],
      ],
    );
    assert.deepEqual(downloaded[0]?.content, payload);
    assert.equal(downloaded[1]?.content, null);
    assert.equal(new TextDecoder().decode(downloaded[4]?.content ?? undefined), 'in tmp\n');

    // BaseSandbox's binary paths (a .png is not text to it) ride on download.
    await backend.uploadFiles([[`${HOME}/img.png`, payload]]);
    const image = await backend.read(`${HOME}/img.png`);
    assert.equal(image.mimeType, 'image/png');
    assert.deepEqual(image.content, payload);
  });

  test('ls, read, grep, glob, edit and delete through BaseSandbox; execute timeouts', async () => {
    await using backend = await SandpoolSandbox.create({
      url: w.url,
      ttlSeconds: 300,
      commandTimeoutMs: 20_000,
      initialFiles: {
        'proj/src/main.py': 'import util\nprint(util.answer())\n',
        'proj/src/util.py': 'def answer():\n    return 42  # the answer\n',
        'proj/README.md': 'The answer is computed.\n',
        '/tmp/scratch.txt': new TextEncoder().encode('scratch\n'),
      },
    });
    const listed = await backend.ls(`${HOME}/proj`);
    assert.deepEqual(listed.files?.map((f) => [f.path, f.is_dir]).sort(), [
      [`${HOME}/proj/README.md`, false],
      [`${HOME}/proj/src/`, true],
    ]);
    const read = await backend.read(`${HOME}/proj/src/util.py`, 1, 1);
    assert.equal(read.content, '     2\t    return 42  # the answer\n');
    assert.deepEqual([read.totalLines, read.startLine, read.endLine], [2, 2, 2]);

    const grep = await backend.grep('answer', `${HOME}/proj`, '*.py');
    assert.deepEqual(grep.matches?.map((m) => [m.path, m.line]).sort(), [
      [`${HOME}/proj/src/main.py`, 2],
      [`${HOME}/proj/src/util.py`, 1],
      [`${HOME}/proj/src/util.py`, 2],
    ]);
    const glob = await backend.glob('**/*.py', `${HOME}/proj`);
    assert.deepEqual(glob.files?.map((f) => f.path).sort(), ['src/main.py', 'src/util.py']);

    assert.equal((await backend.edit(`${HOME}/proj/src/util.py`, '42', '43')).occurrences, 1);
    assert.equal((await backend.execute('cd proj/src && python3 main.py')).output, '43\n');
    assert.match((await backend.edit(`${HOME}/nope.py`, 'a', 'b')).error ?? '', /not found/);
    assert.equal((await backend.delete(`${HOME}/proj/README.md`)).error, undefined);
    assert.match((await backend.delete(`${HOME}/proj/README.md`)).error ?? '', /not found/);
    assert.equal((await backend.execute('cat /tmp/scratch.txt')).output, 'scratch\n');

    const slow = await backend.execute('echo started; sleep 30', { timeoutMs: 1000 });
    assert.notEqual(slow.exitCode, 0);
    assert.match(
      slow.output,
      /^started\n\[timed out after \d+\.\d s: the command and its child processes were killed\]\n$/,
    );
    const big = await backend.execute('head -c 3000000 /dev/zero | tr "\\0" x');
    assert.equal(big.truncated, true);
  });

  test('reconnect by id, close, and the errors of a gone sandbox', async () => {
    await using backend = await SandpoolSandbox.create({ url: w.url, ttlSeconds: 300 });
    await backend.write(`${HOME}/kept.txt`, 'still here\n');
    const again = await SandpoolSandbox.connect(backend.id, { url: w.url });
    assert.equal(again.id, backend.id);
    assert.equal((await again.execute('cat kept.txt')).output, 'still here\n');

    assert.equal(backend.isRunning, true);
    await backend.close();
    await backend.close(); // twice is fine
    assert.equal(backend.isRunning, false);
    assert.ok(!(await api.listSessions()).some((s) => s.sessionId === backend.id));

    const closedHere = await backend.execute('true').catch((e: unknown) => e);
    assert.ok(closedHere instanceof SandpoolSandboxError);
    assert.equal(closedHere.code, 'SANDBOX_NOT_FOUND');
    // The other handle learns from the server that the session is gone.
    const closedThere = await again
      .uploadFiles([['x.txt', new Uint8Array([1])]])
      .catch((e: unknown) => e);
    assert.ok(closedThere instanceof SandpoolSandboxError, String(closedThere));
    assert.equal(closedThere.code, 'SANDBOX_NOT_FOUND');
    await again.close(); // quiet: already gone

    const unknown = await SandpoolSandbox.connect(backend.id, { url: w.url }).catch(
      (e: unknown) => e,
    );
    assert.ok(unknown instanceof SandpoolSandboxError);
    assert.equal(unknown.code, 'SANDBOX_NOT_FOUND');
    assert.match(unknown.message, /session/i);
  });

  test('create failures: no server, and initial files that cannot be written leak no session', async () => {
    const before = (await api.listSessions()).length;
    const refused = await SandpoolSandbox.create({
      url: w.url,
      initialFiles: { '/etc/passwd': 'x' },
    }).catch((e: unknown) => e);
    assert.ok(refused instanceof SandpoolSandboxError);
    assert.equal(refused.code, 'SANDBOX_CREATION_FAILED');
    assert.match(refused.message, /\/etc\/passwd: invalid_path/);
    assert.equal((await api.listSessions()).length, before);

    const nobody = await SandpoolSandbox.create({ url: 'http://127.0.0.1:9' }).catch(
      (e: unknown) => e,
    );
    assert.ok(nobody instanceof SandpoolSandboxError);
    assert.equal(nobody.code, 'SANDBOX_CREATION_FAILED');
    assert.match(nobody.message, /cannot reach sandpool/);
  });

  test('through a coordinator: the example agent, reconnect and close', async () => {
    await using backend = await SandpoolSandbox.create({ url: coordinatorUrl, ttlSeconds: 300 });
    const model = demoModel();
    const { messages } = await createSandboxDeepAgent(model, backend).invoke({
      messages: [new HumanMessage('Write fizzbuzz.py and test it.')],
    });
    assert.equal(model.played, 5);
    const results = toolResults(messages);
    assert.equal(results.get('call_run'), 'Fizz\n\n[Command succeeded with exit code 0]');
    assert.equal(results.get('call_rerun'), 'FizzBuzz\n\n[Command succeeded with exit code 0]');
    assert.equal(messages.at(-1)?.text, 'Fixed: 15 now prints FizzBuzz.');
    const observer = await Sandbox.connect(backend.id, { url: w.url });
    assert.match(
      await observer.readTextFile('fizzbuzz.py'),
      /if n % 15 == 0:\n {8}print\("FizzBuzz"\)\n {4}elif n % 3 == 0:/,
    );

    const payload = binaryPayload();
    const again = await SandpoolSandbox.connect(backend.id, { url: coordinatorUrl });
    assert.deepEqual(await again.uploadFiles([['blob.bin', payload]]), [
      { path: 'blob.bin', error: null },
    ]);
    const [blob, missing] = await backend.downloadFiles([`${HOME}/blob.bin`, 'missing.bin']);
    assert.deepEqual(blob?.content, payload);
    assert.equal(missing?.error, 'file_not_found');
    await backend.close();
    const gone = await again.execute('true').catch((e: unknown) => e);
    assert.ok(gone instanceof SandpoolSandboxError);
    assert.equal(gone.code, 'SANDBOX_NOT_FOUND');
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { Sandbox, SandpoolClient } from '@sandpool/client';
import { createSandboxTools } from '@sandpool/langchain';
import { buildSandboxAgent, finalAnswer } from '../examples/langgraph-agent.js';
import { callTool, ScriptedChatModel } from '../examples/scripted-chat-model.js';
import { containersOf } from './support/docker.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

/**
 * The LangGraph example agent with `@sandpool/langchain` tools in a real sandbox. A scripted
 * chat model stands in for the LLM (no network): it emits tool calls, the graph runs them, and
 * the test checks what they did in the sandbox through an independent client.
 */

const PRIMES_PY =
  'import sys\nn = int(sys.argv[1])\nprimes = [p for p in range(2, 100) if all(p % d for d in range(2, p))]\n' +
  'open("primes.txt", "w").write(" ".join(map(str, primes[:n])))\nprint("wrote", n, "primes")\n';

function toolMessages(messages: readonly BaseMessage[]): ToolMessage[] {
  return messages.filter((m): m is ToolMessage => m instanceof ToolMessage);
}

describe('LangGraph agent with sandpool tools', () => {
  let w: TestWorker;
  let api: SandpoolClient;

  before(async () => {
    w = await startWorker({ poolSize: 1, maxSessions: 3 });
    api = new SandpoolClient({ url: w.url });
  });

  after(async () => {
    await w?.close();
    assert.deepEqual(await containersOf(w.workerId), [], 'containers left behind');
  });

  test('the graph writes, runs and reads code in the sandbox through tool calls', async () => {
    let sessionId = '';
    {
      await using toolkit = await createSandboxTools({ url: w.url, ttlSeconds: 120 });
      sessionId = toolkit.sandbox.sessionId;
      const model = new ScriptedChatModel([
        () => callTool('sandbox_write_file', { path: 'work/primes.py', content: PRIMES_PY }, 'c1'),
        () =>
          callTool(
            'sandbox_exec',
            { command: 'python3 primes.py 10 && whoami', cwd: 'work', timeout_seconds: 30 },
            'c2',
          ),
        () => callTool('sandbox_read_file', { path: 'work/primes.txt' }, 'c3'),
        // A mistake the model can recover from: the tool answers with an error, not a crash.
        () => callTool('sandbox_read_file', { path: 'work/missing.txt' }, 'c4'),
        (messages) => {
          const read = toolMessages(messages).find((m) => m.tool_call_id === 'c3');
          return new AIMessage(
            `The first ten primes are ${read === undefined ? '' : finalAnswer([read])}.`,
          );
        },
      ]);
      const graph = buildSandboxAgent(model, toolkit);
      const { messages } = await graph.invoke({
        messages: [new HumanMessage('Compute the first ten primes with Python.')],
      });

      assert.deepEqual(model.boundTools, [
        'sandbox_exec',
        'sandbox_write_file',
        'sandbox_read_file',
      ]);
      assert.equal(model.played, 5);
      assert.equal(finalAnswer(messages), 'The first ten primes are 2 3 5 7 11 13 17 19 23 29.');
      const results = new Map(
        toolMessages(messages).map((m) => [m.tool_call_id, finalAnswer([m])]),
      );
      assert.match(
        results.get('c1') ?? '',
        /^wrote \d+ bytes to \/home\/sandboxuser\/work\/primes\.py$/,
      );
      assert.match(results.get('c2') ?? '', /^exit_code: 0 /);
      assert.match(results.get('c2') ?? '', /stdout:\nwrote 10 primes\nsandboxuser\n/);
      assert.match(results.get('c4') ?? '', /^error: /);

      // What the tools did, seen by another client of the same session.
      const observer = await Sandbox.connect(sessionId, { url: w.url });
      assert.equal(await observer.readTextFile('work/primes.py'), PRIMES_PY);
      assert.equal(
        await observer.readTextFile('/home/sandboxuser/work/primes.txt'),
        '2 3 5 7 11 13 17 19 23 29',
      );
    }
    // `await using` closed the toolkit's sandbox.
    assert.ok(!(await api.listSessions()).some((s) => s.sessionId === sessionId));
  });

  test('tools bound to a sandbox the caller owns leave it open; long output is shortened', async () => {
    await using sandbox = await Sandbox.create({ url: w.url, ttlSeconds: 120 });
    const toolkit = await createSandboxTools({ sandbox, outputLimitChars: 1000 });
    const model = new ScriptedChatModel([
      () => callTool('sandbox_exec', { command: 'python3 -c "print(\'y\' * 50000)"' }, 'c1'),
      () => callTool('sandbox_exec', { command: 'sleep 5', timeout_seconds: 1 }, 'c2'),
      () => new AIMessage('done'),
    ]);
    const { messages } = await buildSandboxAgent(model, toolkit).invoke({
      messages: [new HumanMessage('Print a lot.')],
    });
    const [long, slow] = toolMessages(messages).map((m) => finalAnswer([m]));
    assert.match(long ?? '', /characters of stdout omitted/);
    assert.ok((long ?? '').length < 1500, `${long?.length} characters`);
    assert.match(slow ?? '', /timeout of 1 s/);
    await toolkit.close();
    assert.equal((await sandbox.exec('echo still open')).stdout, 'still open\n');
  });
});

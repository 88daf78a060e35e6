/**
 * A Deep Agents agent (`createDeepAgent` from the `deepagents` package) whose `execute` and file
 * tools (ls, read_file, write_file, edit_file, glob, grep) work in a sandpool sandbox, through
 * `SandpoolSandbox` from `@sandpool/langchain/deepagents`.
 *
 * Offline, against a worker (`npx sandpool serve`), with a scripted model standing in for a real
 * one (it writes a buggy script, runs it, fixes it and runs it again):
 *
 *   node --import tsx examples/deep-agent.ts
 *
 * With a real model, name it as LangChain's `initChatModel` does, install its provider package
 * and give its key, and pass a task:
 *
 *   npm install @langchain/anthropic
 *   DEEP_AGENT_MODEL=anthropic:claude-sonnet-4-5 ANTHROPIC_API_KEY=... \
 *     node --import tsx examples/deep-agent.ts "Write primes.py that prints the primes below 100, and test it"
 *
 * SANDPOOL_URL (default http://127.0.0.1:5000) and SANDPOOL_API_KEY say where and how to connect.
 */
import { pathToFileURL } from 'node:url';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { SandpoolSandbox } from '@sandpool/langchain/deepagents';
import { createDeepAgent } from 'deepagents';
import { callTool, ScriptedChatModel } from './scripted-chat-model.js';

const HOME = '/home/sandboxuser';

export const SYSTEM_PROMPT =
  `You are a careful programmer working in an isolated Linux sandbox (Debian, python3, no ` +
  `network). Your files live under ${HOME} (also writable: /tmp); use absolute paths. Write ` +
  `code with write_file, run it with execute, fix it with edit_file, and answer with what the ` +
  `sandbox printed.`;

/** The agent: Deep Agents' default tools and planning, with `backend` as its machine. */
export function createSandboxDeepAgent(model: BaseChatModel | string, backend: SandpoolSandbox) {
  return createDeepAgent({ model, backend, systemPrompt: SYSTEM_PROMPT });
}

const BUGGY_FIZZBUZZ = [
  'import sys',
  'for n in range(1, int(sys.argv[1]) + 1):',
  '    if n % 3 == 0:',
  '        print("Fizz")',
  '    elif n % 5 == 0:',
  '        print("Buzz")',
  '    elif n % 15 == 0:',
  '        print("FizzBuzz")',
  '    else:',
  '        print(n)',
  '',
].join('\n');

/** The text of the last tool answer in `messages`. */
export function lastToolText(messages: readonly BaseMessage[]): string {
  const last = messages.filter((m) => m instanceof ToolMessage).at(-1);
  return last?.text ?? '';
}

/** What a model might do when asked for FizzBuzz: write it, run it, see the bug, fix it. */
export function demoModel(): ScriptedChatModel {
  const file_path = `${HOME}/fizzbuzz.py`;
  return new ScriptedChatModel([
    () => callTool('write_file', { file_path, content: BUGGY_FIZZBUZZ }, 'call_write'),
    () => callTool('execute', { command: `python3 ${file_path} 15 | tail -n 1` }, 'call_run'),
    // 15 printed "Fizz": the 15 case must come first.
    () =>
      callTool(
        'edit_file',
        {
          file_path,
          old_string: '    if n % 3 == 0:\n        print("Fizz")\n    elif n % 5 == 0:',
          new_string:
            '    if n % 15 == 0:\n        print("FizzBuzz")\n    elif n % 3 == 0:\n' +
            '        print("Fizz")\n    elif n % 5 == 0:',
        },
        'call_fix',
      ),
    () => callTool('execute', { command: `python3 ${file_path} 15 | tail -n 1` }, 'call_rerun'),
    (messages) =>
      new AIMessage(`Fixed: 15 now prints ${lastToolText(messages).split('\n')[0] ?? ''}.`),
  ]);
}

async function main(): Promise<void> {
  const modelName = process.env.DEEP_AGENT_MODEL;
  const task =
    process.argv[2] ?? 'Write fizzbuzz.py (FizzBuzz up to the number it is given) and test it.';
  // `await using` closes the sandbox (its container is destroyed) when main ends.
  await using sandbox = await SandpoolSandbox.create({
    ttlSeconds: 1800,
    commandTimeoutMs: 120_000,
    metadata: { example: 'deep-agent' },
  });
  console.log(`sandbox ${sandbox.id}; model ${modelName ?? 'scripted (set DEEP_AGENT_MODEL)'}`);
  const agent = createSandboxDeepAgent(modelName ?? demoModel(), sandbox);
  const { messages } = await agent.invoke(
    { messages: [new HumanMessage(task)] },
    { recursionLimit: 100 },
  );
  for (const message of messages) {
    const calls = message instanceof AIMessage ? (message.tool_calls ?? []) : [];
    const text = calls.map((c) => `calls ${c.name} ${JSON.stringify(c.args)}`).join('\n');
    console.log(`--- ${message.getType()}\n${text || message.text}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main();
}

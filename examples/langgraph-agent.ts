/**
 * A LangGraph.js agent that writes and runs code in a sandpool sandbox, with the tools of
 * `@sandpool/langchain`. The graph is the classic loop: the model answers or calls tools, the
 * tools run in the sandbox, their results go back to the model.
 *
 * Run it offline against a worker (`npx sandpool serve`), with a scripted model standing in for
 * a real one:
 *
 *   node --import tsx examples/langgraph-agent.ts
 *
 * With a real model, pass any tool-calling chat model to `buildSandboxAgent`, for example
 * `new ChatAnthropic({ model: '...' })` from @langchain/anthropic or `new ChatOpenAI(...)`.
 */
import { pathToFileURL } from 'node:url';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { AIMessage, HumanMessage, SystemMessage, type BaseMessage } from '@langchain/core/messages';
import { END, MessagesAnnotation, START, StateGraph } from '@langchain/langgraph';
import { ToolNode, toolsCondition } from '@langchain/langgraph/prebuilt';
import { createSandboxTools, type SandboxToolkit } from '@sandpool/langchain';
import { callTool, ScriptedChatModel } from './scripted-chat-model.js';

const SYSTEM_PROMPT =
  'You are a careful programmer. You have a Linux sandbox with python3 and no network. ' +
  'Write code to files with sandbox_write_file, run it with sandbox_exec, check the output, ' +
  'and answer with what you found.';

/** Builds the agent graph: `agent` (the model) and `tools` (the sandbox), looping until done. */
export function buildSandboxAgent(model: BaseChatModel, toolkit: SandboxToolkit) {
  if (model.bindTools === undefined) throw new Error('the model cannot call tools');
  const withTools = model.bindTools(toolkit.tools);

  const agent = async (state: typeof MessagesAnnotation.State) => ({
    messages: [await withTools.invoke([new SystemMessage(SYSTEM_PROMPT), ...state.messages])],
  });

  return new StateGraph(MessagesAnnotation)
    .addNode('agent', agent)
    .addNode('tools', new ToolNode(toolkit.tools))
    .addEdge(START, 'agent')
    .addConditionalEdges('agent', toolsCondition, ['tools', END])
    .addEdge('tools', 'agent')
    .compile();
}

/** The last message's text. */
export function finalAnswer(messages: readonly BaseMessage[]): string {
  const last = messages.at(-1);
  return typeof last?.content === 'string' ? last.content : JSON.stringify(last?.content);
}

/** A demo script: what a model might do when asked for the first ten primes. */
function demoModel(): ScriptedChatModel {
  return new ScriptedChatModel([
    () =>
      callTool(
        'sandbox_write_file',
        {
          path: 'primes.py',
          content:
            'primes = [n for n in range(2, 30) if all(n % d for d in range(2, n))]\nprint(primes[:10])\n',
        },
        'call_1',
      ),
    () => callTool('sandbox_exec', { command: 'python3 primes.py' }, 'call_2'),
    (messages) => new AIMessage(`The sandbox says:\n${finalAnswer(messages)}`),
  ]);
}

async function main(): Promise<void> {
  await using toolkit = await createSandboxTools({ ttlSeconds: 300 });
  const graph = buildSandboxAgent(demoModel(), toolkit);
  const { messages } = await graph.invoke({
    messages: [new HumanMessage('What are the first ten prime numbers? Compute them.')],
  });
  for (const message of messages) {
    const calls = message instanceof AIMessage ? (message.tool_calls ?? []) : [];
    const text = calls.map((c) => `calls ${c.name} ${JSON.stringify(c.args)}`).join('\n');
    console.log(`--- ${message.getType()}\n${text || finalAnswer([message])}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main();
}

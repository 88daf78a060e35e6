/**
 * A chat model that plays a script instead of calling a provider: each turn it looks at the
 * conversation so far and answers with the next scripted message (tool calls or a final
 * answer). It lets the LangGraph example run, and be tested, with no network and no API key.
 */
import {
  BaseChatModel,
  type BaseChatModelParams,
  type BindToolsInput,
} from '@langchain/core/language_models/chat_models';
import { AIMessage, type BaseMessage } from '@langchain/core/messages';
import type { ChatResult } from '@langchain/core/outputs';

/** One turn: the message the "model" sends, given the conversation so far. */
export type ScriptedTurn = (messages: readonly BaseMessage[]) => AIMessage;

/** Plays `turns` in order; it fails loudly if the graph asks for more turns than scripted. */
export class ScriptedChatModel extends BaseChatModel {
  /** The names of the tools the graph bound, as a real model would see them. */
  boundTools: string[] = [];
  private next = 0;

  constructor(
    private readonly turns: readonly ScriptedTurn[],
    params: BaseChatModelParams = {},
  ) {
    super(params);
  }

  _llmType(): string {
    return 'scripted';
  }

  /** Turns played so far. */
  get played(): number {
    return this.next;
  }

  override bindTools(tools: BindToolsInput[]): this {
    this.boundTools = tools.map((t) => ('name' in t && typeof t.name === 'string' ? t.name : '?'));
    return this;
  }

  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    const turn = this.turns[this.next];
    if (turn === undefined) {
      throw new Error(`the script has ${this.turns.length} turns; the graph asked for another`);
    }
    this.next += 1;
    const message = turn(messages);
    return {
      generations: [{ message, text: typeof message.content === 'string' ? message.content : '' }],
    };
  }
}

/** A scripted assistant message that calls one tool. */
export function callTool(name: string, args: Record<string, unknown>, id: string): AIMessage {
  return new AIMessage({ content: '', tool_calls: [{ name, args, id, type: 'tool_call' }] });
}

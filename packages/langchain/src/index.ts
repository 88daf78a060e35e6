/**
 * `@sandpool/langchain`: LangChain.js tools that run shell commands and read and write files in
 * a sandpool sandbox, for LangGraph.js agents and any tool-calling chat model.
 *
 * ```ts
 * import { createSandboxTools } from '@sandpool/langchain';
 *
 * await using toolkit = await createSandboxTools(); // SANDPOOL_URL, SANDPOOL_API_KEY
 * const model = chatModel.bindTools(toolkit.tools);
 * ```
 *
 * A Deep Agents backend, `SandpoolSandbox`, is at `@sandpool/langchain/deepagents`.
 *
 * @packageDocumentation
 */
export {
  createSandboxTools,
  DEFAULT_OUTPUT_LIMIT_CHARS,
  DEFAULT_TOOL_TIMEOUT_MS,
  SandboxToolkit,
  type SandboxTools,
  type SandboxToolsOptions,
} from './sandbox-tools.js';
// Formatting of results for a model lives in the client, shared with the MCP server.
export { clipForModel, describeExecResult, describeExecution } from '@sandpool/client';
export { createRunCodeTool } from './run-code-tool.js';

/**
 * `@sandpool/langchain/deepagents`: a Deep Agents backend on a sandpool sandbox. It needs the
 * optional peer dependency `deepagents`; the package's main entry (the LangChain tools) does not.
 *
 * ```ts
 * import { createDeepAgent } from 'deepagents';
 * import { SandpoolSandbox } from '@sandpool/langchain/deepagents';
 *
 * await using sandbox = await SandpoolSandbox.create(); // SANDPOOL_URL, SANDPOOL_API_KEY
 * const agent = createDeepAgent({ model, backend: sandbox });
 * ```
 *
 * @packageDocumentation
 */
export {
  SandpoolSandbox,
  type SandpoolSandboxConnectOptions,
  type SandpoolSandboxCreateOptions,
  type SandpoolSandboxOptions,
  type SandpoolSandboxWrapOptions,
} from './sandpool-sandbox.js';
export {
  fileOperationErrorOf,
  SandpoolSandboxError,
  type SandpoolSandboxErrorCode,
} from './sandpool-sandbox-error.js';

/**
 * `@sandpool/client`: the TypeScript SDK of sandpool, pre-warmed and hardened code-execution
 * sandboxes for AI agents. Zero runtime dependencies.
 *
 * ```ts
 * import { Sandbox } from '@sandpool/client';
 *
 * await using sandbox = await Sandbox.create(); // SANDPOOL_URL, default http://127.0.0.1:5000
 * const result = await sandbox.exec('whoami');
 * console.log(result.stdout); // sandboxuser
 * ```
 *
 * @packageDocumentation
 */
export { Sandbox } from './sandbox.js';
export {
  DEFAULT_CREATE_TIMEOUT_MS,
  type ExecBatchOptions,
  type ExecOptions,
  type FileData,
  type FileOptions,
  type ReadFileOptions,
  type ReadFormat,
  type SandboxConnectOptions,
  type SandboxCreateOptions,
  type WriteFileOptions,
} from './sandbox-options.js';
export { SandpoolClient, type CallOptions } from './sandpool-client.js';
export type {
  CodeContext,
  CodeLanguage,
  CreateCodeContextOptions,
  Execution,
  ExecutionError,
  Logs,
  Result,
  RunCodeOptions,
} from './code-interpreter.js';
export { executionFrom } from './code-interpreter.js';
export {
  Processes,
  type ConnectProcessOptions,
  type ProcessConnection,
  type ProcessExit,
  type ProcessInfo,
  type ProcessOutputEvent,
  type ProcessSignalName,
  type StartedProcess,
  type StartProcessOptions,
  type TerminalSize,
} from './processes.js';
export { Pty, PtySession, type PtyCreateOptions } from './pty.js';
export { FileWatcher, type WatchEvent, type WatchHandle, type WatchOptions } from './watch.js';
export { clipForModel, describeExecResult, isCorrectableByModel } from './model-text.js';
export { describeProcessForModel } from './process-model-text.js';
export {
  describeExecution,
  describeResult,
  imagesOf,
  type ResultImage,
} from './describe-execution.js';
export {
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_URL,
  type ConnectionOptions,
} from './http-transport.js';
export {
  AuthError,
  CapacityError,
  ConnectionError,
  ContextNotFoundError,
  EgressNotPermittedError,
  FileNotFoundError,
  InternalError,
  ForbiddenOriginError,
  ProcessNotFoundError,
  InvalidPathError,
  InvalidRequestError,
  PayloadTooLargeError,
  RuntimeUnavailableError,
  SandboxError,
  SessionLostError,
  SessionNotFoundError,
  TemplateNotFoundError,
  type ApiErrorCode,
  type CapacityErrorOptions,
  type ClientErrorCode,
  type SandboxErrorCode,
  type SandboxErrorOptions,
} from './errors.js';
export type {
  DownloadFileResult,
  ExecEvent,
  ExecExitEvent,
  ExecResult,
  ExecStderrEvent,
  ExecStdoutEvent,
  FileEntry,
  FileType,
  HealthStatus,
  SessionInfo,
  TemplateInfo,
  NetworkPolicy,
  WriteFileResult,
} from './types.js';

import {
  Sandbox,
  type ConnectionOptions,
  type ExecResult,
  type Execution,
  type FileEntry,
  type Processes,
  type SessionInfo,
} from '@sandpool/client';

/**
 * What the MCP tools need of a sandbox. The SDK's `Sandbox` is one (for `sandpool mcp` and a
 * coordinator, which call an API over HTTP); a worker hands the tools its own services instead
 * ({@link ServiceSandboxSource}), so its MCP face does not call its own HTTP API.
 */
export interface McpSandbox {
  readonly sessionId: string;
  /** Whether this handle closed its session. */
  readonly closed: boolean;
  info(): Promise<SessionInfo>;
  keepAlive(ttlSeconds: number): Promise<SessionInfo>;
  exec(
    command: string,
    options: { timeoutMs?: number; cwd?: string; stdin?: string },
  ): Promise<ExecResult>;
  writeFile(path: string, data: string | Uint8Array): Promise<{ path: string; size: number }>;
  readFileStream(path: string): Promise<ReadableStream<Uint8Array>>;
  listFiles(path: string): Promise<FileEntry[]>;
  /** A cell in the session's code interpreter (a code-interpreter template). */
  runCode(
    code: string,
    options: { language?: 'python' | 'bash'; timeoutMs?: number },
  ): Promise<Execution>;
  /** Background processes (`start_process`, `process_output`). */
  readonly processes: McpProcesses;
  close(): Promise<void>;
}

/** What the process tools need of a session's background processes (the SDK's shapes). */
export type McpProcesses = Pick<Processes, 'start' | 'get' | 'output'>;

/** Where a lease gets its sandbox: a new session, or an existing one by id. */
export interface McpSandboxSource {
  create(options: {
    template?: string;
    ttlSeconds?: number;
    metadata: Record<string, string>;
  }): Promise<McpSandbox>;
  connect(sessionId: string): Promise<McpSandbox>;
}

/** Sandboxes through the SDK, over the API at `connection.url`. */
export function clientSandboxSource(connection: ConnectionOptions): McpSandboxSource {
  return {
    create: (options) => Sandbox.create({ ...connection, ...options }),
    connect: (sessionId) => Sandbox.connect(sessionId, connection),
  };
}

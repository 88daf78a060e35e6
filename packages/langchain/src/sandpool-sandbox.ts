import { Sandbox, type SandboxConnectOptions, type SandboxCreateOptions } from '@sandpool/client';
import {
  BaseSandbox,
  type ExecuteResponse,
  type FileDownloadResponse,
  type FileUploadResponse,
} from 'deepagents';
import {
  fileOperationErrorOf,
  sandboxFailure,
  SandpoolSandboxError,
} from './sandpool-sandbox-error.js';

/** Options every way of making a {@link SandpoolSandbox} takes. */
export interface SandpoolSandboxOptions {
  /**
   * Time limit of each `execute`, in milliseconds. Default: the server's (`--exec-timeout-ms`,
   * 60000 unless the operator changed it); the server refuses more than its
   * `--max-exec-timeout-ms` (default one hour). On timeout the command's whole process group is
   * killed and the output says so.
   */
  commandTimeoutMs?: number;
}

/** Options of {@link SandpoolSandbox.create}: those of `Sandbox.create`, and the backend's. */
export interface SandpoolSandboxCreateOptions extends SandboxCreateOptions, SandpoolSandboxOptions {
  /**
   * Files to put in the sandbox before it is handed over, path → text (UTF-8) or bytes; relative
   * paths are under `/home/sandboxuser`, parent directories are created. If one cannot be
   * written, the session is closed and `create` throws.
   */
  initialFiles?: Record<string, string | Uint8Array>;
}

/** Options of {@link SandpoolSandbox.connect}: those of `Sandbox.connect`, and the backend's. */
export interface SandpoolSandboxConnectOptions
  extends SandboxConnectOptions, SandpoolSandboxOptions {}

/** Options of the {@link SandpoolSandbox} constructor: an open `Sandbox` to wrap. */
export interface SandpoolSandboxWrapOptions extends SandpoolSandboxOptions {
  /** An open `@sandpool/client` sandbox; the backend's `close()` ends it. */
  sandbox: Sandbox;
}

/**
 * A Deep Agents backend (`deepagents`' `BaseSandbox`) on a sandpool sandbox: a pre-warmed,
 * hardened container with no network, where the agent's `execute` tool runs shell commands and
 * its file tools (`ls`, `read_file`, `write_file`, `edit_file`, `glob`, `grep`) work on the
 * sandbox's files.
 *
 * ```ts
 * import { createDeepAgent } from 'deepagents';
 * import { SandpoolSandbox } from '@sandpool/langchain/deepagents';
 *
 * await using sandbox = await SandpoolSandbox.create({ ttlSeconds: 1800 }); // SANDPOOL_URL, SANDPOOL_API_KEY
 * const agent = createDeepAgent({ model, backend: sandbox });
 * await agent.invoke({ messages: [{ role: 'user', content: 'Write and test fizzbuzz.py' }] });
 * ```
 *
 * Commands run as `sandboxuser` in `/home/sandboxuser` through `/bin/sh -c`; stdout and stderr
 * come back together, in the order they were written. Files can be written under
 * `/home/sandboxuser` and `/tmp` (the rest of the file system is read-only; `read_file`, `ls`,
 * `grep` and `glob` see all of it). It works the same against a worker or a coordinator.
 *
 * A command that fails and a missing file are results the model sees; a failure of the sandbox
 * itself (the session gone, the service unreachable) is thrown as a {@link SandpoolSandboxError}.
 */
export class SandpoolSandbox extends BaseSandbox {
  /** The `@sandpool/client` sandbox underneath, for what the backend protocol lacks (processes, PTYs, `runCode`). */
  readonly sandbox: Sandbox;
  private readonly commandTimeoutMs: number | undefined;

  /**
   * Wraps an open `@sandpool/client` sandbox. Prefer {@link SandpoolSandbox.create} and
   * {@link SandpoolSandbox.connect}, which open one.
   */
  constructor(options: SandpoolSandboxWrapOptions) {
    super();
    this.sandbox = options.sandbox;
    this.commandTimeoutMs = options.commandTimeoutMs;
  }

  /** The sandpool session id: `SandpoolSandbox.connect(id)` reaches the sandbox again. */
  get id(): string {
    return this.sandbox.sessionId;
  }

  /** Whether the sandbox is open: `false` once `close()` has ended it. */
  get isRunning(): boolean {
    return !this.sandbox.closed;
  }

  /**
   * Opens a new sandbox (a fresh container from the warm pool) and returns its backend. The
   * connection comes from `url` and `apiKey`, else `SANDPOOL_URL` and `SANDPOOL_API_KEY`.
   *
   * @throws {@link SandpoolSandboxError} `SANDBOX_CREATION_FAILED` when no sandbox can be had
   *   (no server at the URL, a wrong API key, an unknown template, no capacity in
   *   `createTimeoutMs`), or an initial file cannot be written; `cause` has the details
   */
  static async create(options: SandpoolSandboxCreateOptions = {}): Promise<SandpoolSandbox> {
    const { initialFiles, commandTimeoutMs, ...createOptions } = options;
    let sandbox: Sandbox;
    try {
      sandbox = await Sandbox.create(createOptions);
    } catch (error) {
      throw sandboxFailure(error, 'SANDBOX_CREATION_FAILED');
    }
    const backend = new SandpoolSandbox({ sandbox, commandTimeoutMs });
    if (initialFiles !== undefined) {
      const encoder = new TextEncoder();
      const files = Object.entries(initialFiles).map(([path, content]): [string, Uint8Array] => [
        path,
        typeof content === 'string' ? encoder.encode(content) : content,
      ]);
      try {
        const failed = (await backend.uploadFiles(files)).filter((r) => r.error !== null);
        if (failed.length > 0) {
          throw new SandpoolSandboxError(
            `Could not write the initial files (${failed.map((f) => `${f.path}: ${f.error}`).join(', ')}); ` +
              'name files under /home/sandboxuser or /tmp.',
            'SANDBOX_CREATION_FAILED',
          );
        }
      } catch (error) {
        // The caller never gets the sandbox, so it must not outlive this call.
        await sandbox.close().catch(() => undefined);
        throw sandboxFailure(error, 'SANDBOX_CREATION_FAILED');
      }
    }
    return backend;
  }

  /**
   * Returns a backend on an existing session, for example one another process created (its
   * {@link SandpoolSandbox.id}). Its `close()` ends the session.
   *
   * @throws {@link SandpoolSandboxError} `SANDBOX_NOT_FOUND` when the session is unknown,
   *   expired or closed; `SANDBOX_LOST` when its worker died
   */
  static async connect(
    sessionId: string,
    options: SandpoolSandboxConnectOptions = {},
  ): Promise<SandpoolSandbox> {
    const { commandTimeoutMs, ...connectOptions } = options;
    try {
      const sandbox = await Sandbox.connect(sessionId, connectOptions);
      return new SandpoolSandbox({ sandbox, commandTimeoutMs });
    } catch (error) {
      throw sandboxFailure(error, 'SANDBOX_NOT_FOUND');
    }
  }

  /**
   * Runs a shell command (`/bin/sh -c`) in the sandbox and waits for it. `output` has stdout and
   * stderr as they were written; a non-zero exit is a result, not an error. On timeout the
   * command's processes are killed and a last line says so. `truncated` is set when the output
   * went past the server's cap (`--output-limit-bytes`, 1 MiB per stream by default).
   *
   * @param options.timeoutMs - this command's time limit, instead of `commandTimeoutMs`
   * @throws {@link SandpoolSandboxError} when the sandbox is gone or unreachable
   */
  async execute(command: string, options: { timeoutMs?: number } = {}): Promise<ExecuteResponse> {
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
    let output = '';
    try {
      for await (const event of this.sandbox.execStream(command, { timeoutMs })) {
        if (event.type !== 'exit') {
          output += event.data;
          continue;
        }
        if (event.timedOut) {
          const seconds = (event.durationMs / 1000).toFixed(1);
          output += `${output === '' || output.endsWith('\n') ? '' : '\n'}[timed out after ${seconds} s: the command and its child processes were killed]\n`;
        }
        return { output, exitCode: event.exitCode, truncated: event.truncated };
      }
    } catch (error) {
      throw sandboxFailure(error, 'COMMAND_FAILED');
    }
    throw new SandpoolSandboxError(
      'The command stream ended without an exit status; run the command again.',
      'COMMAND_FAILED',
    );
  }

  /**
   * Writes files into the sandbox, each on its own (a failure does not stop the rest), creating
   * parent directories. Per file: `invalid_path` outside `/home/sandboxuser` and `/tmp`,
   * `is_directory` when a directory is there, `permission_denied` when the sandbox refuses it
   * (or it is over the server's upload limit, or the sandbox is full).
   *
   * @throws {@link SandpoolSandboxError} when the sandbox is gone or unreachable
   */
  async uploadFiles(files: Array<[string, Uint8Array]>): Promise<FileUploadResponse[]> {
    const responses: FileUploadResponse[] = [];
    for (const [path, content] of files) {
      try {
        await this.sandbox.writeFile(path, content);
        responses.push({ path, error: null });
      } catch (error) {
        const code = fileOperationErrorOf(error);
        if (code === undefined) throw sandboxFailure(error, 'FILE_OPERATION_FAILED');
        responses.push({ path, error: code });
      }
    }
    return responses;
  }

  /**
   * Reads files from the sandbox as bytes, each on its own. Per file: `file_not_found`,
   * `is_directory`, `permission_denied`, or `invalid_path` outside `/home/sandboxuser` and
   * `/tmp` (read those with `execute`, or `read_file`, which runs through it).
   *
   * @throws {@link SandpoolSandboxError} when the sandbox is gone or unreachable
   */
  async downloadFiles(paths: string[]): Promise<FileDownloadResponse[]> {
    const responses: FileDownloadResponse[] = [];
    for (const path of paths) {
      try {
        responses.push({ path, content: await this.sandbox.readFile(path), error: null });
      } catch (error) {
        const code = fileOperationErrorOf(error);
        if (code === undefined) throw sandboxFailure(error, 'FILE_OPERATION_FAILED');
        responses.push({ path, content: null, error: code });
      }
    }
    return responses;
  }

  /**
   * Ends the session: its container is destroyed before this resolves. Safe to call twice, and
   * quiet when the session is already gone. Afterwards every call throws `SANDBOX_NOT_FOUND`.
   */
  async close(): Promise<void> {
    try {
      await this.sandbox.close();
    } catch (error) {
      throw sandboxFailure(error, 'SANDBOX_CLOSE_FAILED');
    }
  }

  /** The same as {@link SandpoolSandbox.close} (`@langchain/daytona` names it both ways). */
  kill(): Promise<void> {
    return this.close();
  }

  /** `await using sandbox = await SandpoolSandbox.create()` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

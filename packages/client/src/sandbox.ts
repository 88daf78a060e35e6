import {
  createCodeContext,
  listCodeContexts,
  removeCodeContext,
  restartCodeContext,
  runCode,
  type CodeContext,
  type CreateCodeContextOptions,
  type Execution,
  type RunCodeOptions,
} from './code-interpreter.js';
import { basename } from 'node:path';
import { backoffDelayMs, sleep } from './backoff.js';
import { CapacityError, SessionLostError, SessionNotFoundError } from './errors.js';
import { HttpTransport, resolveConnection } from './http-transport.js';
import { SandboxCommands } from './sandbox-commands.js';
import { SandboxFiles } from './sandbox-files.js';
import {
  DEFAULT_CREATE_TIMEOUT_MS,
  type ExecBatchOptions,
  type ExecOptions,
  type FileData,
  type FileOptions,
  type ReadFileOptions,
  type SandboxConnectOptions,
  type SandboxCreateOptions,
  type WriteFileOptions,
} from './sandbox-options.js';
import { Processes } from './processes.js';
import { Pty } from './pty.js';
import { FileWatcher } from './watch.js';
import {
  createSession,
  deleteSession,
  getSession,
  keepAliveSession,
  sessionPath,
} from './session-api.js';
import type {
  DownloadFileResult,
  ExecEvent,
  ExecResult,
  FileEntry,
  SessionInfo,
  WriteFileResult,
} from './types.js';

type SandboxState = 'open' | 'closing' | 'closed';

/** Preview hosts' domain unless told otherwise (the server's default too). */
const DEFAULT_PREVIEW_DOMAIN = 'localhost';

function checkedPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`port must be an integer from 1 to 65535, not ${port}`);
  }
  return port;
}

/**
 * One sandbox session: a fresh, hardened container on a sandpool worker, where untrusted code
 * runs as `sandboxuser`. Get one with {@link Sandbox.create} (or {@link Sandbox.connect} to an
 * existing session) and end it with {@link Sandbox.close}, or let `await using` end it:
 *
 * ```ts
 * await using sandbox = await Sandbox.create();
 * const { stdout } = await sandbox.exec('python3 -c "print(6 * 7)"');
 * ```
 *
 * Works the same against a worker or a coordinator.
 */
export class Sandbox implements AsyncDisposable {
  /** The session's id; `Sandbox.connect(sessionId)` reaches it from another process. */
  readonly sessionId: string;
  /** The worker that holds the session's container. */
  readonly workerId: string;
  /**
   * The session's own secret: send it as `X-Access-Token` to reach a private port through
   * {@link Sandbox.getHost}'s host.
   */
  readonly accessToken: string;
  /** Background processes that outlive a call: start, list, follow, stdin, signal, kill. */
  readonly processes: Processes;
  /** Interactive terminals (a program on a pseudo-terminal). */
  readonly pty: Pty;
  /** Directory watching: `sandbox.files.watch(path, onEvent)`. */
  readonly files: FileWatcher;

  private state: SandboxState = 'open';
  private closing: Promise<void> | undefined;
  private readonly commands: SandboxCommands;
  /** The file calls behind `writeFile`, `readFile`... (`files` is the public watch namespace). */
  private readonly fileCalls: SandboxFiles;

  private constructor(
    private readonly transport: HttpTransport,
    session: SessionInfo,
  ) {
    this.sessionId = session.sessionId;
    this.workerId = session.workerId;
    this.accessToken = session.accessToken;
    const route = (suffix: string): string => this.sessionRoute(suffix);
    this.commands = new SandboxCommands(transport, route);
    this.fileCalls = new SandboxFiles(transport, route);
    this.processes = new Processes(transport, route);
    this.pty = new Pty(this.processes);
    this.files = new FileWatcher(transport, route);
  }

  /**
   * Opens a new session. While the server has no capacity (503 `capacity_exhausted`) it retries
   * with exponential backoff, honouring `Retry-After`, for up to `createTimeoutMs`; then it
   * throws the last {@link CapacityError}.
   *
   * @throws {@link ConnectionError} when no server answers at the URL
   * @throws {@link AuthError} when the API key is missing or wrong
   */
  static async create(options: SandboxCreateOptions = {}): Promise<Sandbox> {
    const transport = new HttpTransport(resolveConnection(options));
    const timeoutMs = options.createTimeoutMs ?? DEFAULT_CREATE_TIMEOUT_MS;
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return new Sandbox(transport, await createSession(transport, options));
      } catch (error) {
        if (!(error instanceof CapacityError)) throw error;
        const remainingMs = started + timeoutMs - Date.now();
        if (remainingMs <= 0) {
          throw new CapacityError(
            `${error.message} (gave up after ${attempt + 1} tries in ${Date.now() - started} ms;` +
              ' raise createTimeoutMs to wait longer)',
            { status: error.status, retryAfterMs: error.retryAfterMs, cause: error },
          );
        }
        await sleep(backoffDelayMs(attempt, error.retryAfterMs, remainingMs), options.signal);
      }
    }
  }

  /**
   * Attaches to an existing session, for example one another process created.
   *
   * @throws {@link SessionNotFoundError} when the session is unknown, expired or closed
   */
  static async connect(sessionId: string, options: SandboxConnectOptions = {}): Promise<Sandbox> {
    const transport = new HttpTransport(resolveConnection(options));
    return new Sandbox(transport, await getSession(transport, sessionId, options.signal));
  }

  /** The base URL of the server this sandbox talks to. */
  get url(): string {
    return this.transport.url;
  }

  /** Whether {@link Sandbox.close} has completed. */
  get closed(): boolean {
    return this.state === 'closed';
  }

  /** The session as the server sees it now (its expiry, metadata). */
  async info(options: FileOptions = {}): Promise<SessionInfo> {
    return getSession(this.transport, this.openSessionId(), options.signal);
  }

  /**
   * Extends the session's life to `ttlSeconds` from now (the server caps it at its maximum).
   * @returns the session with its new `expiresAt`
   */
  async keepAlive(ttlSeconds: number, options: FileOptions = {}): Promise<SessionInfo> {
    return keepAliveSession(this.transport, this.openSessionId(), ttlSeconds, options.signal);
  }

  /**
   * Runs a command and waits for it. A string runs through `/bin/sh -c` (pipes, `&&`, globs); an
   * array runs as argv, with no shell. A non-zero exit is a result, not an error.
   *
   * With `onStdout` or `onStderr` the call streams, and they see output as it arrives.
   */
  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.commands.exec(command, options);
  }

  /**
   * Runs a command and yields its output as it arrives, then one `exit` event:
   *
   * ```ts
   * for await (const event of sandbox.execStream('make test')) {
   *   if (event.type === 'stdout') process.stdout.write(event.data);
   *   if (event.type === 'exit') console.log('exit code', event.exitCode);
   * }
   * ```
   *
   * Leaving the loop early disconnects, and the server then kills the command. A server that
   * does not stream answers with the whole result, and the events are made from it.
   *
   * @throws {@link SandboxError} for a failure the server reports mid-stream
   */
  async *execStream(
    command: string | readonly string[],
    options: Omit<ExecOptions, 'onStdout' | 'onStderr'> = {},
  ): AsyncGenerator<ExecEvent, void, undefined> {
    yield* this.commands.execStream(command, options);
  }

  // --- code interpreter (code-interpreter.ts holds the calls) -------------------------------

  /**
   * Runs a code cell in a persistent context (a real IPython kernel by default) and returns what
   * it produced: Jupyter's rich results (the last expression, `display()`, matplotlib figures as
   * PNG), its logs and its error. Variables persist between calls in the same context.
   *
   * ```ts
   * await sandbox.runCode('x = 21');
   * const { text } = await sandbox.runCode('x * 2'); // '42'
   * ```
   *
   * With `onStdout`, `onStderr`, `onResult` or `onError` the call streams, and they see each
   * output as it happens. The session needs the `code-interpreter` template.
   */
  async runCode(code: string, options: RunCodeOptions = {}): Promise<Execution> {
    return runCode(this.transport, sessionPath(this.openSessionId()), code, options);
  }

  /** Creates a code context with its own kernel (or bash) and variables. */
  async createCodeContext(options: CreateCodeContextOptions = {}): Promise<CodeContext> {
    return createCodeContext(this.transport, sessionPath(this.openSessionId()), options);
  }

  /** The session's code contexts. */
  async listCodeContexts(options: FileOptions = {}): Promise<CodeContext[]> {
    return listCodeContexts(this.transport, sessionPath(this.openSessionId()), options.signal);
  }

  /** Restarts a context: a fresh kernel, its variables gone. */
  async restartCodeContext(
    context: CodeContext | string,
    options: FileOptions = {},
  ): Promise<CodeContext> {
    return restartCodeContext(
      this.transport,
      sessionPath(this.openSessionId()),
      context,
      options.signal,
    );
  }

  /** Deletes a context and its kernel. */
  async removeCodeContext(context: CodeContext | string, options: FileOptions = {}): Promise<void> {
    return removeCodeContext(
      this.transport,
      sessionPath(this.openSessionId()),
      context,
      options.signal,
    );
  }

  /**
   * Runs commands one after another, each as {@link Sandbox.exec} would, and returns their
   * results in order. With `stopOnError` it stops after the first that fails.
   */
  async execBatch(
    commands: readonly (string | readonly string[])[],
    options: ExecBatchOptions = {},
  ): Promise<ExecResult[]> {
    return this.commands.execBatch(commands, options);
  }

  /**
   * Writes a file in the sandbox, creating its parent directories. A relative path is under the
   * home, `/home/sandboxuser`. Streams and iterables are sent as they are read.
   *
   * @throws {@link PayloadTooLargeError} when the file is over the server's upload limit
   * @throws {@link InvalidPathError} when the path escapes the sandbox's writable roots
   */
  async writeFile(
    path: string,
    data: FileData,
    options: WriteFileOptions = {},
  ): Promise<WriteFileResult> {
    return this.fileCalls.writeFile(path, data, options);
  }

  /**
   * Reads a file from the sandbox: bytes by default, text with `{ format: 'text' }`, a stream
   * with `{ format: 'stream' }`.
   *
   * @throws {@link FileNotFoundError} when there is no such file
   */
  async readFile(path: string, options?: ReadFileOptions<'bytes'>): Promise<Uint8Array>;
  async readFile(path: string, options: ReadFileOptions<'text'>): Promise<string>;
  async readFile(
    path: string,
    options: ReadFileOptions<'stream'>,
  ): Promise<ReadableStream<Uint8Array>>;
  async readFile(
    path: string,
    options: ReadFileOptions = {},
  ): Promise<Uint8Array | string | ReadableStream<Uint8Array>> {
    return this.fileCalls.readFile(path, options);
  }

  /** Reads a file from the sandbox as UTF-8 text. */
  async readTextFile(path: string, options: FileOptions = {}): Promise<string> {
    return this.readFile(path, { ...options, format: 'text' });
  }

  /**
   * Reads a file from the sandbox as a web `ReadableStream` of bytes, as it arrives (for large
   * files). Cancel the stream if you stop reading early.
   */
  async readFileStream(
    path: string,
    options: FileOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    return this.fileCalls.readStream(path, options);
  }

  /**
   * Uploads a local file into the sandbox, streamed from disk.
   *
   * @param remotePath - where to put it; default the local file's name, in the home
   */
  async uploadFile(
    localPath: string,
    remotePath: string = basename(localPath),
    options: FileOptions = {},
  ): Promise<WriteFileResult> {
    return this.fileCalls.uploadFile(localPath, remotePath, options);
  }

  /**
   * Downloads a file from the sandbox to a local path, streamed to disk. The file appears whole
   * or not at all: it is written beside the target and renamed when complete.
   */
  async downloadFile(
    remotePath: string,
    localPath: string,
    options: FileOptions = {},
  ): Promise<DownloadFileResult> {
    return this.fileCalls.downloadFile(remotePath, localPath, options);
  }

  /** Lists a directory in the sandbox; default the home. */
  async listFiles(path = '.', options: FileOptions = {}): Promise<FileEntry[]> {
    return this.fileCalls.listFiles(path, options);
  }

  /**
   * Removes a file in the sandbox.
   * @throws {@link FileNotFoundError} when there is no such file
   */
  async removeFile(path: string, options: FileOptions = {}): Promise<void> {
    return this.fileCalls.removeFile(path, options);
  }

  /**
   * The host (E2B's `getHost`: `{port}-{session id}.{preview domain}[:server port]`, no scheme)
   * at which a server listening on `port` inside the sandbox answers, although the sandbox has
   * no network: the worker or coordinator carries requests, WebSockets included, through the
   * sandbox's agent. Ports are private: send {@link Sandbox.accessToken} as `X-Access-Token`,
   * open a {@link Sandbox.previewUrl}, or make the port public with {@link Sandbox.setPortPublic}.
   *
   * @param options.previewDomain the server's `--preview-domain`; default
   *   `SANDPOOL_PREVIEW_DOMAIN` or `localhost` (which browsers and curl resolve to loopback)
   */
  getHost(port: number, options: { previewDomain?: string } = {}): string {
    const domain =
      options.previewDomain ?? process.env.SANDPOOL_PREVIEW_DOMAIN ?? DEFAULT_PREVIEW_DOMAIN;
    const serverPort = new URL(this.transport.url).port;
    const host = `${checkedPort(port)}-${this.sessionId}.${domain}`;
    return serverPort === '' ? host : `${host}:${serverPort}`;
  }

  /**
   * A signed URL of a port for a browser: it works without the token until it expires (the
   * first visit turns it into a cookie of that host and redirects to a URL without it).
   *
   * @param options.ttlSeconds how long the URL works; default 3600
   */
  async previewUrl(
    port: number,
    options: { ttlSeconds?: number; signal?: AbortSignal } = {},
  ): Promise<{ url: string; expiresAt: Date }> {
    const answer = (await this.transport.requestJson({
      method: 'POST',
      path: this.sessionRoute(`/ports/${checkedPort(port)}/url`),
      json: options.ttlSeconds === undefined ? {} : { ttl_seconds: options.ttlSeconds },
      signal: options.signal,
    })) as { url: string; expires_at: string };
    return { url: answer.url, expiresAt: new Date(answer.expires_at) };
  }

  /** Makes a port public (anyone with its host may use it) or private again (the default). */
  async setPortPublic(port: number, isPublic: boolean, options: FileOptions = {}): Promise<void> {
    await this.transport.requestJson({
      method: 'PUT',
      path: this.sessionRoute(`/ports/${checkedPort(port)}`),
      json: { public: isPublic },
      signal: options.signal,
    });
  }

  /**
   * Ends the session; its container is destroyed before this resolves. Safe to call twice, and
   * quiet when the session is already gone (expired, or lost with its worker). After it, every
   * other call throws {@link SessionNotFoundError}.
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  /** `await using sandbox = await Sandbox.create()` closes the sandbox at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async closeOnce(): Promise<void> {
    this.state = 'closing';
    try {
      await deleteSession(this.transport, this.sessionId);
    } catch (error) {
      if (!(error instanceof SessionNotFoundError || error instanceof SessionLostError)) {
        // Not closed: let a later close() try again.
        this.state = 'open';
        this.closing = undefined;
        throw error;
      }
    }
    this.state = 'closed';
  }

  private openSessionId(): string {
    if (this.state !== 'open') {
      throw new SessionNotFoundError(`sandbox ${this.sessionId} was closed by this client`);
    }
    return this.sessionId;
  }

  private sessionRoute(suffix: string): string {
    return `${sessionPath(this.openSessionId())}${suffix}`;
  }
}

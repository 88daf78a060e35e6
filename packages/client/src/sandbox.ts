import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { backoffDelayMs, sleep } from './backoff.js';
import { CapacityError, SandboxError, SessionLostError, SessionNotFoundError } from './errors.js';
import {
  HttpTransport,
  resolveConnection,
  responseBody,
  type ConnectionOptions,
} from './http-transport.js';
import { readNdjson } from './ndjson.js';
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
import {
  eventsFromResult,
  execBody,
  parseExecEvent,
  parseExecResult,
  parseFileList,
  parseWriteResult,
} from './wire.js';

/** Default of {@link SandboxCreateOptions.createTimeoutMs}: how long `create` waits for room. */
export const DEFAULT_CREATE_TIMEOUT_MS = 30_000;

/** Options of {@link Sandbox.create}. */
export interface SandboxCreateOptions extends ConnectionOptions {
  /** Session lifetime in seconds; default the server's (1 hour). Extend it with `keepAlive`. */
  ttlSeconds?: number;
  /** Environment variables every command of the session sees. */
  env?: Record<string, string>;
  /** Labels kept with the session and shown by `listSessions` (for example your run's id). */
  metadata?: Record<string, string>;
  /**
   * How long to keep retrying while the server answers `capacity_exhausted` (503), in
   * milliseconds; default 30000. Retries back off exponentially and honour `Retry-After`.
   * `0` tries once.
   */
  createTimeoutMs?: number;
  /** Aborts the creation (including its retries). */
  signal?: AbortSignal;
}

/** Options of {@link Sandbox.connect}. */
export interface SandboxConnectOptions extends ConnectionOptions {
  /** Aborts the lookup. */
  signal?: AbortSignal;
}

/** Options of {@link Sandbox.exec} and {@link Sandbox.execStream}. */
export interface ExecOptions {
  /** Working directory inside the sandbox; default the home, `/home/sandboxuser`. */
  cwd?: string;
  /** Extra environment variables for this command. */
  env?: Record<string, string>;
  /** Text fed to the command's stdin (closed after it). */
  stdin?: string;
  /**
   * Time limit in milliseconds; default the server's (60000). On timeout the command's whole
   * process group is killed and the result says `timedOut: true`.
   */
  timeoutMs?: number;
  /** Called with each piece of stdout as it arrives (the call then streams). */
  onStdout?: (data: string) => void;
  /** Called with each piece of stderr as it arrives (the call then streams). */
  onStderr?: (data: string) => void;
  /** Aborts the call; the server then kills the command. */
  signal?: AbortSignal;
}

/** Options of {@link Sandbox.execBatch}: those of `exec`, for every command, plus one. */
export interface ExecBatchOptions extends Omit<ExecOptions, 'onStdout' | 'onStderr'> {
  /**
   * Stop after the first command that exits non-zero or times out; the results then end with
   * that command's. Default `false`: run them all.
   */
  stopOnError?: boolean;
}

/** Options of the file calls. */
export interface FileOptions {
  /** Aborts the call. */
  signal?: AbortSignal;
}

/** Options of {@link Sandbox.writeFile}. */
export interface WriteFileOptions extends FileOptions {
  /**
   * The data's length in bytes, when you know it for a stream. It is sent as `Content-Length`,
   * so the server can refuse an oversized upload before any of it is sent. `uploadFile` sets it.
   */
  sizeBytes?: number;
}

/** Options of {@link Sandbox.readFile}; `format` picks what it returns (default `bytes`). */
export interface ReadFileOptions<F extends ReadFormat = ReadFormat> extends FileOptions {
  /** `bytes` (a `Uint8Array`, the default), `text` (UTF-8) or `stream` (a web `ReadableStream`). */
  format?: F;
}

/** What {@link Sandbox.readFile} can return. */
export type ReadFormat = 'bytes' | 'text' | 'stream';

/**
 * What {@link Sandbox.writeFile} accepts: text (written as UTF-8), bytes, a `Blob`, a web
 * `ReadableStream`, or any async iterable of bytes such as a Node `Readable`. Streams are sent
 * as they are read, never held whole in memory.
 */
export type FileData =
  | string
  | Uint8Array
  | ArrayBuffer
  | Blob
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array | string>;

type SandboxState = 'open' | 'closing' | 'closed';

const NDJSON = 'application/x-ndjson';

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
  /** Background processes that outlive a call: start, list, follow, stdin, signal, kill. */
  readonly processes: Processes;
  /** Interactive terminals (a program on a pseudo-terminal). */
  readonly pty: Pty;
  /** Directory watching: `sandbox.files.watch(path, onEvent)`. */
  readonly files: FileWatcher;

  private state: SandboxState = 'open';
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly transport: HttpTransport,
    session: SessionInfo,
  ) {
    this.sessionId = session.sessionId;
    this.workerId = session.workerId;
    this.processes = new Processes(transport, (suffix) => this.sessionRoute(suffix));
    this.pty = new Pty(this.processes);
    this.files = new FileWatcher(transport, (suffix) => this.sessionRoute(suffix));
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
    const { onStdout, onStderr } = options;
    if (onStdout === undefined && onStderr === undefined) {
      const answer = await this.transport.requestJson({
        method: 'POST',
        path: this.sessionRoute('/exec'),
        json: execBody(command, options),
        timeoutMs: null,
        signal: options.signal,
      });
      return parseExecResult(answer);
    }
    const stdout: string[] = [];
    const stderr: string[] = [];
    for await (const event of this.execStream(command, options)) {
      switch (event.type) {
        case 'stdout':
          stdout.push(event.data);
          onStdout?.(event.data);
          break;
        case 'stderr':
          stderr.push(event.data);
          onStderr?.(event.data);
          break;
        case 'exit':
          return {
            stdout: stdout.join(''),
            stderr: stderr.join(''),
            exitCode: event.exitCode,
            durationMs: event.durationMs,
            timedOut: event.timedOut,
            truncated: event.truncated,
          };
      }
    }
    // execStream throws rather than end without an exit event.
    throw new SandboxError('invalid_response', 'exec stream ended before its exit event');
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
    const path = this.sessionRoute('/exec');
    const response = await this.transport.request({
      method: 'POST',
      path,
      json: execBody(command, options),
      accept: `${NDJSON}, application/json;q=0.5`,
      timeoutMs: null,
      signal: options.signal,
    });
    const url = this.transport.urlFor(path);
    const contentType = response.headers.get('content-type') ?? '';
    const body = responseBody(response);
    if (!contentType.includes(NDJSON) || body === null) {
      let answer: unknown;
      try {
        answer = JSON.parse(await response.text()) as unknown;
      } catch (error) {
        throw this.streamError(error, url, options.signal);
      }
      yield* eventsFromResult(parseExecResult(answer));
      return;
    }
    let exited = false;
    try {
      for await (const line of readNdjson(body)) {
        const event = parseExecEvent(line);
        if (event === undefined) continue;
        yield event;
        if (event.type === 'exit') exited = true;
      }
    } catch (error) {
      throw this.streamError(error, url, options.signal);
    }
    if (!exited) {
      throw new SandboxError('invalid_response', `POST ${url}: the stream ended before the exit`);
    }
  }

  /**
   * Runs commands one after another, each as {@link Sandbox.exec} would, and returns their
   * results in order. With `stopOnError` it stops after the first that fails.
   */
  async execBatch(
    commands: readonly (string | readonly string[])[],
    options: ExecBatchOptions = {},
  ): Promise<ExecResult[]> {
    const { stopOnError = false, ...execOptions } = options;
    const results: ExecResult[] = [];
    for (const command of commands) {
      const result = await this.exec(command, execOptions);
      results.push(result);
      if (stopOnError && (result.exitCode !== 0 || result.timedOut)) break;
    }
    return results;
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
    const body = toBody(data);
    const answer = await this.transport.requestJson({
      method: 'PUT',
      path: this.sessionRoute('/files'),
      query: { path },
      body,
      // A known size lets the server refuse an oversized upload before it is sent.
      headers:
        options.sizeBytes === undefined
          ? undefined
          : { 'content-length': String(options.sizeBytes) },
      timeoutMs: null,
      signal: options.signal,
    });
    return parseWriteResult(answer);
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
    const response = await this.fileResponse(path, options.signal);
    const url = this.transport.urlFor(this.sessionRoute('/files'), { path });
    if (options.format === 'stream') return this.guardStream(response, url, options.signal);
    try {
      const bytes = new Uint8Array(await response.arrayBuffer());
      return options.format === 'text' ? new TextDecoder().decode(bytes) : bytes;
    } catch (error) {
      throw this.streamError(error, url, options.signal);
    }
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
    return this.readFile(path, { ...options, format: 'stream' });
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
    const { size } = await stat(localPath);
    return this.writeFile(remotePath, createReadStream(localPath), {
      ...options,
      sizeBytes: size,
    });
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
    const stream = await this.readFileStream(remotePath, options);
    const partial = `${localPath}.${randomBytes(4).toString('hex')}.partial`;
    const file = await open(partial, 'w');
    let size = 0;
    try {
      for await (const chunk of stream) {
        await file.write(chunk);
        size += chunk.byteLength;
      }
      await file.close();
      await rename(partial, localPath);
    } catch (error) {
      await file.close().catch(() => undefined);
      await rm(partial, { force: true });
      throw error;
    }
    return { path: localPath, size };
  }

  /** Lists a directory in the sandbox; default the home. */
  async listFiles(path = '.', options: FileOptions = {}): Promise<FileEntry[]> {
    const answer = await this.transport.requestJson({
      method: 'GET',
      path: this.sessionRoute('/files/list'),
      query: { path },
      signal: options.signal,
    });
    return parseFileList(answer);
  }

  /**
   * Removes a file in the sandbox.
   * @throws {@link FileNotFoundError} when there is no such file
   */
  async removeFile(path: string, options: FileOptions = {}): Promise<void> {
    await this.transport.requestJson({
      method: 'DELETE',
      path: this.sessionRoute('/files'),
      query: { path },
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

  private async fileResponse(path: string, signal: AbortSignal | undefined): Promise<Response> {
    return this.transport.request({
      method: 'GET',
      path: this.sessionRoute('/files'),
      query: { path },
      accept: 'application/octet-stream',
      timeoutMs: null,
      signal,
    });
  }

  /** A failure while reading an answer's body: typed errors pass, the rest is the network's. */
  private streamError(error: unknown, url: string, signal: AbortSignal | undefined): Error {
    if (error instanceof SyntaxError) {
      return new SandboxError('invalid_response', `${url}: ${error.message}`, { cause: error });
    }
    return this.transport.networkError(error, url, signal, null);
  }

  /** The answer's body, with a broken connection surfacing as a `ConnectionError`. */
  private guardStream(
    response: Response,
    url: string,
    signal: AbortSignal | undefined,
  ): ReadableStream<Uint8Array> {
    const body = responseBody(response);
    if (body === null) return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    const reader = body.getReader();
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          try {
            const { done, value } = await reader.read();
            if (done) controller.close();
            else controller.enqueue(value);
          } catch (error) {
            controller.error(this.streamError(error, url, signal));
          }
        },
        cancel: (reason) => reader.cancel(reason),
      },
      { highWaterMark: 0 },
    );
  }
}

const encoder = new TextEncoder();

/** Turns {@link FileData} into something `fetch` sends; iterables become a pulled stream. */
function toBody(data: FileData): Uint8Array | Blob | ReadableStream<Uint8Array> {
  if (typeof data === 'string') return encoder.encode(data);
  if (data instanceof Uint8Array || data instanceof Blob || data instanceof ReadableStream) {
    return data;
  }
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  const iterator: AsyncIterator<Uint8Array | string> = data[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const step = await iterator.next();
        if (step.done === true) controller.close();
        else
          controller.enqueue(
            typeof step.value === 'string' ? encoder.encode(step.value) : step.value,
          );
      },
      async cancel(reason) {
        await iterator.return?.(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

import type { ConnectionOptions } from './http-transport.js';
import type { NetworkPolicy } from './types.js';

// The options of the Sandbox calls, apart from the class so each call module can take them.

/** Default of {@link SandboxCreateOptions.createTimeoutMs}: how long `create` waits for room. */
export const DEFAULT_CREATE_TIMEOUT_MS = 30_000;

/** Options of `Sandbox.create`. */
export interface SandboxCreateOptions extends ConnectionOptions {
  /**
   * Template to start from (`GET /v1/templates` lists them): `base` (the default) or
   * `code-interpreter`, or one the operator built. An unknown one throws `TemplateNotFoundError`.
   */
  template?: string;
  /** Session lifetime in seconds; default the server's (1 hour). Extend it with `keepAlive`. */
  ttlSeconds?: number;
  /** Environment variables every command of the session sees. */
  env?: Record<string, string>;
  /** Labels kept with the session and shown by `listSessions` (for example your run's id). */
  metadata?: Record<string, string>;
  /**
   * Outbound network by domain: without it the sandbox has none (unless the operator gave the
   * template a default list). A list beyond what the worker allows (`--egress-allow-max`) throws
   * `EgressNotPermittedError`.
   */
  network?: NetworkPolicy;
  /**
   * How long to keep retrying while the server answers `capacity_exhausted` (503), in
   * milliseconds; default 30000. Retries back off exponentially and honour `Retry-After`.
   * `0` tries once.
   */
  createTimeoutMs?: number;
  /** Aborts the creation (including its retries). */
  signal?: AbortSignal;
}

/** Options of `Sandbox.connect`. */
export interface SandboxConnectOptions extends ConnectionOptions {
  /** Aborts the lookup. */
  signal?: AbortSignal;
}

/** Options of `Sandbox.exec` and `Sandbox.execStream`. */
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

/** Options of `Sandbox.execBatch`: those of `exec`, for every command, plus one. */
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

/** Options of `Sandbox.writeFile`. */
export interface WriteFileOptions extends FileOptions {
  /**
   * The data's length in bytes, when you know it for a stream. It is sent as `Content-Length`,
   * so the server can refuse an oversized upload before any of it is sent. `uploadFile` sets it.
   */
  sizeBytes?: number;
}

/** Options of `Sandbox.readFile`; `format` picks what it returns (default `bytes`). */
export interface ReadFileOptions<F extends ReadFormat = ReadFormat> extends FileOptions {
  /** `bytes` (a `Uint8Array`, the default), `text` (UTF-8) or `stream` (a web `ReadableStream`). */
  format?: F;
}

/** What `Sandbox.readFile` can return. */
export type ReadFormat = 'bytes' | 'text' | 'stream';

/**
 * What `Sandbox.writeFile` accepts: text (written as UTF-8), bytes, a `Blob`, a web
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

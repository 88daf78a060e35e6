import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type {
  ExecOutcome,
  ExecRequest,
  ExecSinks,
  FileEntry,
  FileStat,
  FileType,
} from '../sandbox-runtime.js';
import {
  AgentProtocolError,
  encodeAck,
  encodeFrame,
  FrameDecoder,
  parseJsonPayload,
  ReplyType,
  RequestType,
  type AgentFrame,
} from './agent-protocol.js';

/** How much the worker lets an agent (untrusted: it shares a uid with the sandbox's code) do. */
export interface AgentLimits {
  /** Largest payload accepted in one frame. */
  maxFrameBytes: number;
  /** Unacknowledged output bytes per request the agent may have in flight (it uses 256 KiB). */
  windowBytes: number;
  /** While requests are pending, the agent is pinged this often. */
  pingIntervalMs: number;
  /** An agent that sends nothing for this long while requests are pending is declared dead. */
  silenceTimeoutMs: number;
  /** After a kill, how long to wait for the exit report before giving up on it. */
  killGraceMs: number;
  /** Frames for requests nobody waits for (late output, forgeries) tolerated per second. */
  maxStrayFramesPerSecond: number;
  /**
   * Frames taken per second before `receive` asks the transport to pause: a flood of tiny frames
   * would cost the worker CPU out of proportion to the bytes, which the window alone does not bound.
   */
  maxFramesPerSecond: number;
  /** Size of the data frames of an upload. */
  uploadChunkBytes: number;
}

export const DEFAULT_AGENT_LIMITS: AgentLimits = {
  maxFrameBytes: 1024 * 1024,
  windowBytes: 256 * 1024,
  pingIntervalMs: 5_000,
  silenceTimeoutMs: 20_000,
  killGraceMs: 5_000,
  maxStrayFramesPerSecond: 5_000,
  maxFramesPerSecond: 50_000,
  uploadChunkBytes: 256 * 1024,
};

export interface AgentClientOptions {
  /** Writes one frame to the agent; resolves when more may be written (backpressure). */
  send(frame: Buffer): Promise<void>;
  limits?: Partial<AgentLimits>;
  /** Called once, when the connection is lost for good. */
  onLost?(reason: string): void;
}

interface Pending {
  onFrame(frame: AgentFrame): void;
  fail(error: Error): void;
}

/** Receives a channel's frames; throwing an AgentProtocolError ends the connection. */
export type AgentChannelHandler = Pending;

/** A long-lived request (see `AgentClient.openChannel`). */
export interface AgentChannel {
  readonly limits: AgentLimits;
  send(type: number, payload?: Uint8Array | object): void;
  /** Stops routing frames to the handler (later ones count as strays). */
  close(): void;
}

/** A failed file operation as the agent reports it (an errno name and its text). */
class AgentOperationError extends Error {
  constructor(
    readonly errno: string,
    message: string,
  ) {
    super(message);
  }
}

const MAX_REQUEST_ID = 0xffff_ffff;

/**
 * The worker's side of one agent connection: request ids, per-request flow control, a watchdog
 * for a silent agent, and the runtime interface's operations. Transport-agnostic: the caller
 * feeds received bytes to `receive()` and reports the end of the stream with `end()`.
 */
export class AgentClient {
  private readonly limits: AgentLimits;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lostReason: string | undefined;
  private lastHeardMs = performance.now();
  private watchdog: NodeJS.Timeout | undefined;
  private strayWindowStartMs = 0;
  private strayCount = 0;
  private rateSliceStartMs = 0;
  private rateSliceFrames = 0;

  constructor(private readonly options: AgentClientOptions) {
    this.limits = { ...DEFAULT_AGENT_LIMITS, ...options.limits };
    this.decoder = new FrameDecoder(this.limits.maxFrameBytes);
  }

  /** Why the connection is gone, or undefined while it works. */
  get lost(): string | undefined {
    return this.lostReason;
  }

  /**
   * Bytes from the agent's stdout. A returned promise asks the transport to read no more until
   * it settles (the agent is over its frame rate).
   */
  receive(chunk: Buffer): Promise<void> | undefined {
    if (this.lostReason !== undefined) return undefined;
    const now = performance.now();
    this.lastHeardMs = now;
    let frames: AgentFrame[];
    try {
      frames = this.decoder.push(chunk);
      for (const frame of frames) this.dispatch(frame);
    } catch (error) {
      if (!(error instanceof AgentProtocolError)) throw error;
      this.fail(`broke the protocol (${error.message})`);
      return undefined;
    }
    // Budgeted in slices of 100 ms; past the budget, reading pauses until the next slice.
    if (now - this.rateSliceStartMs >= 100) {
      this.rateSliceStartMs = now;
      this.rateSliceFrames = 0;
    }
    this.rateSliceFrames += frames.length;
    if (this.rateSliceFrames <= this.limits.maxFramesPerSecond / 10) return undefined;
    const waitMs = Math.max(1, this.rateSliceStartMs + 100 - now);
    return new Promise((resolve) => setTimeout(resolve, waitMs));
  }

  /** The transport ended: every pending and future request fails with `session_lost`. */
  end(reason: string): void {
    this.fail(reason);
  }

  /** Waits for the agent's greeting; rejects when it does not answer within `timeoutMs`. */
  async hello(timeoutMs: number): Promise<{ version: number; pid: number }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the agent did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const reply = await Promise.race([
        this.call(RequestType.hello, {}, ReplyType.hello),
        timeout,
      ]);
      return { version: Number(reply.version), pid: Number(reply.pid) };
    } finally {
      clearTimeout(timer);
    }
  }

  async exec(request: ExecRequest, sinks: ExecSinks): Promise<ExecOutcome> {
    this.assertOpen();
    const started = performance.now();
    const id = this.allocateId();
    const { windowBytes, maxFrameBytes, killGraceMs } = this.limits;
    return new Promise<ExecOutcome>((resolve, reject) => {
      let timedOut = false;
      let cancelled = false;
      let settled = false;
      let unacked = 0;
      let delivery: Promise<void> = Promise.resolve();
      let sinkError: Error | undefined;
      let graceTimer: NodeJS.Timeout | undefined;

      const cleanup = () => {
        settled = true;
        this.release(id);
        clearTimeout(timer);
        clearTimeout(graceTimer);
        request.signal?.removeEventListener('abort', cancel);
      };
      const finish = (exitCode: number) => {
        if (settled) return;
        cleanup();
        if (sinkError !== undefined) reject(sinkError);
        else resolve({ exitCode, timedOut, durationMs: Math.round(performance.now() - started) });
      };
      const cancel = () => {
        if (cancelled || settled) return;
        cancelled = true;
        this.sendQuietly(encodeFrame(RequestType.cancel, id));
        // The agent reports the exit once the group is dead; if it never does, stop waiting.
        graceTimer = setTimeout(() => finish(137), killGraceMs);
      };
      const timer = setTimeout(() => {
        timedOut = true;
        cancel();
      }, request.timeoutMs);

      this.pending.set(id, {
        onFrame: (frame) => {
          if (frame.type === ReplyType.stdout || frame.type === ReplyType.stderr) {
            const size = frame.payload.length;
            unacked += size;
            if (unacked > windowBytes + maxFrameBytes) {
              throw new AgentProtocolError(
                `${unacked} unacknowledged output bytes, over the window`,
              );
            }
            const stdout = frame.type === ReplyType.stdout;
            delivery = delivery.then(async () => {
              if (sinkError === undefined && !settled) {
                try {
                  await (stdout ? sinks.onStdout(frame.payload) : sinks.onStderr(frame.payload));
                } catch (error) {
                  sinkError = error instanceof Error ? error : new Error(String(error));
                  cancel();
                }
              }
              unacked -= size;
              // Acknowledged only once delivered: a slow reader holds the command back.
              if (!settled) this.sendQuietly(encodeAck(id, size));
            });
          } else if (frame.type === ReplyType.exit) {
            const body = parseJsonPayload(frame.payload);
            const code =
              typeof body.code === 'number' && Number.isInteger(body.code) ? body.code : -1;
            void delivery.then(() => finish(code));
          } else if (frame.type === ReplyType.error) {
            const failure = operationError(frame.payload);
            if (settled) return;
            cleanup();
            reject(
              new SandpoolError(
                'runtime_unavailable',
                `The sandbox's agent could not run the command: ${failure.errno} ${failure.message}`,
              ),
            );
          } else {
            throw new AgentProtocolError(`unexpected frame type ${frame.type} for an exec`);
          }
        },
        fail: (error) => {
          if (settled) return;
          cleanup();
          reject(error);
        },
      });
      this.watch();

      request.signal?.addEventListener('abort', cancel, { once: true });
      void this.sendExec(id, request).then(() => {
        if (request.signal?.aborted) cancel();
      });
    });
  }

  private async sendExec(id: number, request: ExecRequest): Promise<void> {
    try {
      await this.options.send(
        encodeFrame(RequestType.exec, id, {
          argv: request.argv,
          cwd: request.cwd,
          env: request.env ?? {},
          stdin: request.stdin !== undefined,
        }),
      );
      if (request.stdin !== undefined) {
        const stdin = Buffer.from(request.stdin);
        for (let offset = 0; offset < stdin.length; offset += this.limits.uploadChunkBytes) {
          await this.options.send(
            encodeFrame(
              RequestType.stdin,
              id,
              stdin.subarray(offset, offset + this.limits.uploadChunkBytes),
            ),
          );
        }
        await this.options.send(encodeFrame(RequestType.stdinEnd, id));
      }
    } catch (error) {
      this.fail(`could not be written to (${errorText(error)})`);
    }
  }

  async writeFile(path: string, content: Readable): Promise<number> {
    this.assertOpen();
    const id = this.allocateId();
    let failure: Error | undefined;
    const answer = this.expect(id, ReplyType.ok).catch((error: unknown) => {
      failure = error instanceof Error ? error : new Error(String(error));
      throw failure;
    });
    answer.catch(() => undefined); // observed below; avoids an unhandled rejection meanwhile
    try {
      await this.options.send(encodeFrame(RequestType.writeOpen, id, { path }));
      for await (const piece of content as AsyncIterable<Buffer>) {
        if (failure !== undefined) break;
        const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
        for (let offset = 0; offset < chunk.length; offset += this.limits.uploadChunkBytes) {
          await this.options.send(
            encodeFrame(
              RequestType.writeData,
              id,
              chunk.subarray(offset, offset + this.limits.uploadChunkBytes),
            ),
          );
        }
      }
    } catch (error) {
      // The source failed (client went away): the agent drops the partial file.
      this.sendQuietly(encodeFrame(RequestType.cancel, id));
      this.release(id);
      // A write that failed because the agent went away is a lost session, not an upload error.
      if (this.lostReason !== undefined) throw lostError(this.lostReason);
      throw error;
    }
    if (failure === undefined) this.sendQuietly(encodeFrame(RequestType.writeEnd, id));
    try {
      const reply = await answer;
      return Number(reply.size);
    } catch (error) {
      throw mapFileError(error, path);
    }
  }

  async statFile(path: string): Promise<FileStat | undefined> {
    const reply = await this.fileCall(RequestType.stat, path);
    if (reply.exists !== true) return undefined;
    return { type: asFileType(reply.type), size: Number(reply.size) };
  }

  async readFile(path: string, destination: Writable): Promise<void> {
    this.assertOpen();
    const id = this.allocateId();
    const { windowBytes, maxFrameBytes } = this.limits;
    await new Promise<void>((resolve, reject) => {
      let unacked = 0;
      let delivery: Promise<void> = Promise.resolve();
      let failed = false;
      const fail = (error: unknown) => {
        if (failed) return;
        failed = true;
        this.release(id);
        reject(error instanceof Error ? error : new Error(String(error)));
      };
      this.pending.set(id, {
        onFrame: (frame) => {
          if (frame.type === ReplyType.data) {
            unacked += frame.payload.length;
            if (unacked > windowBytes + maxFrameBytes) {
              throw new AgentProtocolError(`${unacked} unacknowledged file bytes, over the window`);
            }
            delivery = delivery.then(async () => {
              if (failed) return;
              try {
                if (!destination.write(frame.payload)) await once(destination, 'drain');
              } catch (error) {
                this.sendQuietly(encodeFrame(RequestType.cancel, id));
                fail(error);
                return;
              }
              unacked -= frame.payload.length;
              this.sendQuietly(encodeAck(id, frame.payload.length));
            });
          } else if (frame.type === ReplyType.end) {
            void delivery.then(() => {
              if (failed) return;
              failed = true;
              this.release(id);
              resolve();
            });
          } else if (frame.type === ReplyType.error) {
            fail(mapFileError(operationError(frame.payload), path));
          } else {
            throw new AgentProtocolError(`unexpected frame type ${frame.type} for a read`);
          }
        },
        fail,
      });
      this.watch();
      this.options.send(encodeFrame(RequestType.read, id, { path })).catch((error: unknown) => {
        this.fail(`could not be written to (${errorText(error)})`);
      });
    });
  }

  async listFiles(path: string): Promise<FileEntry[]> {
    let reply: Record<string, unknown>;
    try {
      reply = await this.call(RequestType.list, { path }, ReplyType.ok);
    } catch (error) {
      if (error instanceof AgentOperationError && error.errno === 'ENOTDIR') {
        throw new SandpoolError(
          'invalid_path',
          `${path} is a file, not a directory; read it with GET /files?path=...`,
        );
      }
      throw mapFileError(error, path);
    }
    if (!Array.isArray(reply.entries)) throw this.protocolFailure('a list answer without entries');
    const entries: FileEntry[] = [];
    for (const raw of reply.entries as unknown[]) {
      if (!Array.isArray(raw) || raw.length !== 5)
        throw this.protocolFailure('a malformed list entry');
      const [name, type, size, mode, mtime] = raw as unknown[];
      entries.push({
        name: String(name),
        type: asFileType(type),
        size: Number(size),
        mode: String(mode),
        mtime: new Date(Number(mtime) * 1000).toISOString(),
      });
    }
    return entries.sort((a, b) => a.name.localeCompare(b.name));
  }

  async removeFile(path: string): Promise<void> {
    await this.fileCall(RequestType.remove, path);
  }

  /**
   * A request that lives as long as a background process or a watch (agent-processes.ts): the
   * agent's frames for its id go to `handler` until `close()`, under the same bounds as any other.
   */
  openChannel(handler: AgentChannelHandler): AgentChannel {
    this.assertOpen();
    const id = this.allocateId();
    this.pending.set(id, handler);
    this.watch();
    return {
      limits: this.limits,
      send: (type, payload) => this.sendQuietly(encodeFrame(type, id, payload)),
      close: () => this.release(id),
    };
  }

  /** Fails every pending request and refuses new ones (the sandbox is being destroyed). */
  close(): void {
    this.fail('was closed');
  }

  // --- plumbing ---------------------------------------------------------------------------------

  private async fileCall(type: number, path: string): Promise<Record<string, unknown>> {
    try {
      return await this.call(type, { path }, ReplyType.ok);
    } catch (error) {
      throw mapFileError(error, path);
    }
  }

  /** One request, one answer of type `replyType` (or an error frame). */
  private call(type: number, payload: object, replyType: number): Promise<Record<string, unknown>> {
    this.assertOpen();
    const id = this.allocateId();
    const answer = this.expect(id, replyType);
    this.options.send(encodeFrame(type, id, payload)).catch((error: unknown) => {
      this.fail(`could not be written to (${errorText(error)})`);
    });
    return answer;
  }

  private expect(id: number, replyType: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        onFrame: (frame) => {
          this.release(id);
          if (frame.type === replyType) resolve(parseJsonPayload(frame.payload));
          else if (frame.type === ReplyType.error) reject(operationError(frame.payload));
          else throw new AgentProtocolError(`unexpected frame type ${frame.type}`);
        },
        fail: reject,
      });
      this.watch();
    });
  }

  private dispatch(frame: AgentFrame): void {
    if (frame.type === ReplyType.pong) return;
    const pending = this.pending.get(frame.requestId);
    if (pending) {
      pending.onFrame(frame);
      return;
    }
    // Late output of a finished request is normal; a flood of it is not.
    const now = performance.now();
    if (now - this.strayWindowStartMs > 1000) {
      this.strayWindowStartMs = now;
      this.strayCount = 0;
    }
    if (++this.strayCount > this.limits.maxStrayFramesPerSecond) {
      throw new AgentProtocolError('too many frames for requests nobody waits for');
    }
  }

  private allocateId(): number {
    const id = this.nextId;
    this.nextId = this.nextId >= MAX_REQUEST_ID ? 1 : this.nextId + 1;
    return id;
  }

  private release(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0 && this.watchdog !== undefined) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
    }
  }

  /** While anything is pending, ping the agent and give up on it when it stays silent. */
  private watch(): void {
    if (this.watchdog !== undefined) return;
    this.lastHeardMs = performance.now();
    this.watchdog = setInterval(() => {
      if (performance.now() - this.lastHeardMs > this.limits.silenceTimeoutMs) {
        this.fail(`did not answer for ${this.limits.silenceTimeoutMs} ms`);
        return;
      }
      this.sendQuietly(encodeFrame(RequestType.ping, 0));
    }, this.limits.pingIntervalMs);
    this.watchdog.unref();
  }

  private sendQuietly(frame: Buffer): void {
    if (this.lostReason !== undefined) return;
    this.options.send(frame).catch((error: unknown) => {
      this.fail(`could not be written to (${errorText(error)})`);
    });
  }

  private assertOpen(): void {
    if (this.lostReason !== undefined) throw lostError(this.lostReason);
  }

  private protocolFailure(what: string): SandpoolError {
    this.fail(`broke the protocol (${what})`);
    return lostError(this.lostReason ?? what);
  }

  private fail(reason: string): void {
    if (this.lostReason !== undefined) return;
    this.lostReason = reason;
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    const error = lostError(reason);
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.fail(error);
    this.options.onLost?.(reason);
  }
}

function lostError(reason: string): SandpoolError {
  return new SandpoolError('session_lost', `The sandbox's agent ${reason}; create a new session.`);
}

function operationError(payload: Buffer): AgentOperationError {
  const body = parseJsonPayload(payload);
  return new AgentOperationError(
    typeof body.errno === 'string' ? body.errno : 'EIO',
    typeof body.message === 'string' ? body.message : 'unknown error',
  );
}

function asFileType(value: unknown): FileType {
  return value === 'file' || value === 'directory' || value === 'symlink' ? value : 'other';
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The public error a failed file operation means, with the same wording as the docker-exec path. */
export function mapFileError(error: unknown, path: string): Error {
  if (!(error instanceof AgentOperationError))
    return error instanceof Error ? error : new Error(String(error));
  switch (error.errno) {
    case 'ENOENT':
      return new SandpoolError('file_not_found', `No file or directory at ${path} in the sandbox.`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new SandpoolError(
        'payload_too_large',
        `The sandbox has no space left for ${path}; remove files or write less.`,
      );
    case 'EISDIR':
      return new SandpoolError('invalid_path', `${path} is a directory; name a file.`);
    case 'ENOTDIR':
      return new SandpoolError('invalid_path', `A parent of ${path} is a file, not a directory.`);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new SandpoolError(
        'invalid_path',
        `The sandbox user may not access ${path}: ${error.message}`,
      );
    default:
      return new SandpoolError(
        'invalid_request',
        `File operation on ${path} failed: ${error.errno} ${error.message}`,
      );
  }
}

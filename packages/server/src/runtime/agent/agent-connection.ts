import { ChannelBudget } from './agent-channel-budget.js';
import { errorText, lostError, operationError } from './agent-errors.js';
import {
  AgentProtocolError,
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
  /** Frames for requests nobody waits for (late output, forgeries, pongs) tolerated per second. */
  maxStrayFramesPerSecond: number;
  /**
   * Frames taken per second before `receive` asks the transport to pause: a flood of tiny frames
   * would cost the worker CPU out of proportion to the bytes, which the window alone does not bound.
   */
  maxFramesPerSecond: number;
  /** Chunks (transport reads) per second of one sandbox before reading pauses. */
  maxChunksPerSecond: number;
  /** Bytes per second of one sandbox before reading pauses. */
  maxBytesPerSecond: number;
  /**
   * An incomplete frame spread over more than this many chunks, averaging under
   * `minAverageChunkBytes`, is a trickle: the agent writes each frame (at most 64 KiB and a
   * header) at once, which arrives in pages of 4 KiB at worst, so only code writing into its
   * channel piece by piece produces one. The connection ends.
   */
  trickleChunks: number;
  minAverageChunkBytes: number;
  /** Size of the data frames of an upload. */
  uploadChunkBytes: number;
  /** Most entries a directory listing may have. */
  maxListEntries: number;
}

export const DEFAULT_AGENT_LIMITS: AgentLimits = {
  maxFrameBytes: 1024 * 1024,
  windowBytes: 256 * 1024,
  pingIntervalMs: 5_000,
  silenceTimeoutMs: 20_000,
  killGraceMs: 5_000,
  maxStrayFramesPerSecond: 5_000,
  maxFramesPerSecond: 50_000,
  // An honest agent sends each frame in one write of up to 64 KiB, and a throttled one batches
  // more into each read, so a low budget costs it little; it caps what a trickle makes dockerd
  // relay and the worker decode.
  maxChunksPerSecond: 2_000,
  maxBytesPerSecond: 256 * 1024 * 1024,
  trickleChunks: 64,
  minAverageChunkBytes: 2048,
  uploadChunkBytes: 256 * 1024,
  maxListEntries: 10_000,
};

/** What every agent channel of one worker may use together. */
export const DEFAULT_WORKER_CHANNEL_LIMITS = {
  chunksPerSecond: 20_000,
  bytesPerSecond: 1024 * 1024 * 1024,
};

export interface AgentConnectionOptions {
  /** Writes one frame to the agent; resolves when more may be written (backpressure). */
  send(frame: Buffer): Promise<void>;
  limits?: Partial<AgentLimits>;
  /** Shared by every connection of the worker: bounds what all sandboxes together cost. */
  workerBudget?: ChannelBudget;
  /** Called once, when the connection is lost for good. */
  onLost?(reason: string): void;
}

/** What waits for frames of one request id. */
export interface PendingRequest {
  onFrame(frame: AgentFrame): void;
  fail(error: Error): void;
}

const MAX_REQUEST_ID = 0xffff_ffff;

/**
 * One agent connection, transport-agnostic: request ids, dispatch of frames to the requests that
 * wait for them, the bounds on what the agent may send, and a watchdog for a silent agent. The
 * caller feeds received bytes to `receive()` and reports the end of the stream with `end()`.
 */
export class AgentConnection {
  readonly limits: AgentLimits;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, PendingRequest>();
  private readonly budget: ChannelBudget;
  private readonly frameBudget: ChannelBudget;
  private nextId = 1;
  private lostReason: string | undefined;
  private lastHeardMs = performance.now();
  private watchdog: NodeJS.Timeout | undefined;
  private strayWindowStartMs = 0;
  private strayCount = 0;

  constructor(private readonly options: AgentConnectionOptions) {
    this.limits = { ...DEFAULT_AGENT_LIMITS, ...options.limits };
    this.decoder = new FrameDecoder(this.limits.maxFrameBytes);
    this.budget = new ChannelBudget({
      chunksPerSecond: this.limits.maxChunksPerSecond,
      bytesPerSecond: this.limits.maxBytesPerSecond,
    });
    this.frameBudget = new ChannelBudget({
      chunksPerSecond: this.limits.maxFramesPerSecond,
      bytesPerSecond: Number.POSITIVE_INFINITY,
    });
  }

  /** Why the connection is gone, or undefined while it works. */
  get lost(): string | undefined {
    return this.lostReason;
  }

  /** Requests waiting for the agent (an abandoned operation must not stay here). */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** True while the silence watchdog's timer runs. */
  get watching(): boolean {
    return this.watchdog !== undefined;
  }

  /**
   * Bytes from the agent's stdout. A returned promise asks the transport to read no more until
   * it settles (the sandbox or the worker is over its budget).
   */
  receive(chunk: Buffer): Promise<void> | undefined {
    if (this.lostReason !== undefined) return undefined;
    const now = performance.now();
    this.lastHeardMs = now;
    let frames: AgentFrame[];
    try {
      frames = this.decoder.push(chunk);
      this.checkTrickle();
      for (const frame of frames) this.dispatch(frame);
    } catch (error) {
      if (!(error instanceof AgentProtocolError)) throw error;
      this.fail(`broke the protocol (${error.message})`);
      return undefined;
    }
    let waitMs = Math.max(
      this.budget.take(chunk.length, now),
      this.options.workerBudget?.take(chunk.length, now) ?? 0,
    );
    for (let i = 0; i < frames.length; i++)
      waitMs = Math.max(waitMs, this.frameBudget.take(0, now));
    if (waitMs === 0) return undefined;
    return new Promise((resolve) => setTimeout(resolve, waitMs));
  }

  /** The transport ended: every pending and future request fails with `session_lost`. */
  end(reason: string): void {
    this.fail(reason);
  }

  /** Fails every pending request and refuses new ones (the sandbox is being destroyed). */
  close(): void {
    this.fail('was closed');
  }

  /** A fresh request id, registered with what handles its frames; the watchdog runs meanwhile. */
  open(handler: PendingRequest): number {
    this.assertOpen();
    const id = this.nextId;
    this.nextId = this.nextId >= MAX_REQUEST_ID ? 1 : this.nextId + 1;
    this.pending.set(id, handler);
    this.watch();
    return id;
  }

  /** The request is over: its later frames are strays. */
  release(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0 && this.watchdog !== undefined) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
    }
  }

  /** One request, one answer of type `replyType` (or an error frame). */
  call(type: number, payload: object, replyType: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const id = this.open({
        onFrame: (frame) => {
          this.release(id);
          if (frame.type === replyType) resolve(parseJsonPayload(frame.payload));
          else if (frame.type === ReplyType.error) reject(operationError(frame.payload));
          else throw new AgentProtocolError(`unexpected frame type ${frame.type}`);
        },
        fail: reject,
      });
      this.send(encodeFrame(type, id, payload));
    });
  }

  /** Sends a frame; a failed write loses the connection (its pending requests learn why). */
  send(frame: Buffer): void {
    if (this.lostReason !== undefined) return;
    this.options.send(frame).catch((error: unknown) => {
      this.fail(`could not be written to (${errorText(error)})`);
    });
  }

  /** Sends a frame and waits until more may be written; rejects with `session_lost` when gone. */
  async sendAwaited(frame: Buffer): Promise<void> {
    this.assertOpen();
    try {
      await this.options.send(frame);
    } catch (error) {
      this.fail(`could not be written to (${errorText(error)})`);
      throw lostError(this.lostReason ?? 'could not be written to');
    }
  }

  assertOpen(): void {
    if (this.lostReason !== undefined) throw lostError(this.lostReason);
  }

  /** Ends the connection for something no honest agent does; the error to throw. */
  protocolFailure(what: string): Error {
    this.fail(`broke the protocol (${what})`);
    return lostError(this.lostReason ?? what);
  }

  private checkTrickle(): void {
    const chunks = this.decoder.pendingChunks;
    if (chunks <= this.limits.trickleChunks) return;
    const average = this.decoder.bufferedBytes / chunks;
    if (average < this.limits.minAverageChunkBytes) {
      throw new AgentProtocolError(
        `a frame trickled in ${chunks} pieces of ${Math.round(average)} bytes on average`,
      );
    }
  }

  private dispatch(frame: AgentFrame): void {
    const pending = frame.type === ReplyType.pong ? undefined : this.pending.get(frame.requestId);
    if (pending) {
      pending.onFrame(frame);
      return;
    }
    // Late output of a finished request and pongs are normal; a flood of them is not.
    const now = performance.now();
    if (now - this.strayWindowStartMs > 1000) {
      this.strayWindowStartMs = now;
      this.strayCount = 0;
    }
    if (++this.strayCount > this.limits.maxStrayFramesPerSecond) {
      throw new AgentProtocolError('too many frames for requests nobody waits for');
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
      this.send(encodeFrame(RequestType.ping, 0));
    }, this.limits.pingIntervalMs);
    this.watchdog.unref();
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

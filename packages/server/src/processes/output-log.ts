import { StringDecoder } from 'node:string_decoder';
import type { OutputStream } from '../runtime/sandbox-processes.js';

/** Bytes all output logs of a worker may hold together. */
export class OutputBudget {
  private used = 0;

  constructor(readonly limitBytes: number) {}

  get usedBytes(): number {
    return this.used;
  }

  /** Takes `bytes` if they fit. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limitBytes) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

export interface OutputChunk {
  /** Position of this chunk; readers keep the next one they want. */
  readonly seq: number;
  /** Output bytes written before this chunk (counting dropped ones). */
  readonly offset: number;
  /** Output bytes this chunk stands for. */
  readonly bytes: number;
  readonly stream: OutputStream;
  readonly data: string;
}

/** Where a reader is: the next chunk it wants and the output bytes it has seen. */
export interface OutputCursor {
  seq: number;
  offset: number;
}

export interface OutputRead {
  /** Bytes the reader missed because they were dropped before it read them. */
  droppedBytes: number;
  chunks: OutputChunk[];
}

/** What a kept chunk costs besides its bytes (object, string header), so tiny chunks add up. */
const CHUNK_OVERHEAD_BYTES = 64;

/**
 * The bounded tail of one process's output, read by any number of readers at their own pace.
 * Older output is dropped when the process's limit or the worker's budget is reached; a reader
 * that fell behind learns how much it missed. Text is decoded per stream, so a character split
 * across chunks is never torn.
 */
export class OutputLog {
  private readonly chunks: OutputChunk[] = [];
  private readonly decoders = {
    stdout: new StringDecoder('utf8'),
    stderr: new StringDecoder('utf8'),
  };
  private readonly waiters = new Set<() => void>();
  private nextSeq = 0;
  private totalBytes = 0;
  private keptCost = 0;
  private closed = false;

  constructor(
    private readonly limitBytes: number,
    private readonly budget: OutputBudget,
  ) {}

  /** Output bytes written so far, dropped ones included. */
  get writtenBytes(): number {
    return this.totalBytes;
  }

  /** True once `close()` was called: no more output will come. */
  get ended(): boolean {
    return this.closed;
  }

  get endSeq(): number {
    return this.nextSeq;
  }

  append(stream: OutputStream, bytes: Buffer): void {
    if (this.closed) return;
    this.push(stream, this.decoders[stream].write(bytes), bytes.length);
  }

  /** No more output: flushes what the decoders held and wakes every reader. */
  close(): void {
    if (this.closed) return;
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.decoders[stream].end();
      if (rest) this.push(stream, rest, 0);
    }
    this.closed = true;
    this.wake();
  }

  /** Everything kept from the cursor on; `droppedBytes` > 0 when some of it is gone. */
  read(cursor: OutputCursor): OutputRead {
    const first = this.chunks[0];
    if (first === undefined || cursor.seq < first.seq) {
      const keptFrom = first?.offset ?? this.totalBytes;
      const missed = cursor.seq < this.nextSeq ? Math.max(0, keptFrom - cursor.offset) : 0;
      return { droppedBytes: missed, chunks: this.chunks.slice() };
    }
    return { droppedBytes: 0, chunks: this.chunks.slice(cursor.seq - first.seq) };
  }

  /** The cursor after `chunk`. */
  static after(chunk: OutputChunk): OutputCursor {
    return { seq: chunk.seq + 1, offset: chunk.offset + chunk.bytes };
  }

  /** Resolves on new output, on close, or when `signal` aborts; leaves nothing behind. */
  changed(signal?: AbortSignal): Promise<void> {
    if (this.closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Gives the kept bytes back to the worker's budget (the process is forgotten). */
  release(): void {
    this.budget.give(this.keptCost);
    this.keptCost = 0;
    this.chunks.length = 0;
    this.closed = true;
    this.wake();
  }

  /** Readers waiting right now (for tests: none may be left behind). */
  get waiting(): number {
    return this.waiters.size;
  }

  private push(stream: OutputStream, data: string, bytes: number): void {
    const offset = this.totalBytes;
    this.totalBytes += bytes;
    if (data.length === 0) return;
    const chunk: OutputChunk = { seq: this.nextSeq++, offset, bytes, stream, data };
    const cost = Buffer.byteLength(data) + CHUNK_OVERHEAD_BYTES;
    // Room is made by dropping this log's own oldest output; a process cannot evict another's.
    while (this.chunks.length > 0 && this.keptCost + cost > this.limitBytes) this.dropOldest();
    let fits = cost <= this.limitBytes;
    while (fits && !this.budget.take(cost)) {
      if (this.chunks.length === 0) fits = false;
      else this.dropOldest();
    }
    if (fits) {
      this.chunks.push(chunk);
      this.keptCost += cost;
    }
    this.wake();
  }

  private dropOldest(): void {
    const dropped = this.chunks.shift();
    if (dropped === undefined) return;
    const cost = Buffer.byteLength(dropped.data) + CHUNK_OVERHEAD_BYTES;
    this.keptCost -= cost;
    this.budget.give(cost);
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

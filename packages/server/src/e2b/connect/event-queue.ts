/** Schedules `fn` after `ms`; returns its cancel. Injected so tests need no real waits. */
export type TimerStart = (fn: () => void, ms: number) => () => void;

export const realTimer: TimerStart = (fn, ms) => {
  const timer = setTimeout(fn, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

export interface EventQueueOptions<T> {
  /** Items held before `push` waits for the reader (backpressure reaches the producer). */
  capacity: number;
  /** When set, a reader idle this long gets `keepalive.value()` (proxies keep the stream open). */
  keepalive?: { intervalMs: number; value: () => T };
  timer?: TimerStart;
}

/**
 * A bounded hand-over from a producer (a service's `emit` callback) to one async reader (a
 * server-streaming handler). `push` resolves once the item fits, so a slow client slows the
 * producer instead of growing memory; `close` frees a producer still waiting.
 */
export class EventQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  private readerWake: (() => void) | undefined;
  private ended = false;
  private closed = false;
  private failure: { error: unknown } | undefined;
  private readonly timer: TimerStart;

  constructor(private readonly options: EventQueueOptions<T>) {
    this.timer = options.timer ?? realTimer;
  }

  /** Resolves once the item is queued (or dropped because the reader left). */
  async push(item: T): Promise<void> {
    while (!this.closed && !this.ended && this.items.length >= this.options.capacity) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    if (this.closed || this.ended) return;
    this.items.push(item);
    this.wakeReader();
  }

  /** No more items: the reader finishes after the queued ones. */
  end(): void {
    this.ended = true;
    this.wakeReader();
    this.freeProducers();
  }

  /** The reader throws `error` after the queued items. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.failure = { error };
    this.end();
  }

  /** The reader left: queued items are dropped and producers stop waiting. */
  close(): void {
    this.closed = true;
    this.items.length = 0;
    this.wakeReader();
    this.freeProducers();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      for (;;) {
        const item = await this.next();
        if (item === DONE) return;
        yield item;
      }
    } finally {
      this.close();
    }
  }

  private async next(): Promise<T | typeof DONE> {
    for (;;) {
      if (this.closed) return DONE;
      if (this.items.length > 0) {
        const item = this.items.shift() as T;
        this.roomWaiters.shift()?.();
        return item;
      }
      if (this.ended) {
        if (this.failure) throw this.failure.error;
        return DONE;
      }
      let keepalive = false;
      const { keepalive: every } = this.options;
      let cancel: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        this.readerWake = resolve;
        if (every) {
          cancel = this.timer(() => {
            keepalive = true;
            resolve();
          }, every.intervalMs);
        }
      });
      cancel?.();
      this.readerWake = undefined;
      if (keepalive && this.items.length === 0 && !this.ended && !this.closed && every) {
        return every.value();
      }
    }
  }

  private wakeReader(): void {
    this.readerWake?.();
  }

  private freeProducers(): void {
    for (const resolve of this.roomWaiters.splice(0)) resolve();
  }
}

const DONE = Symbol('done');

/**
 * The keep-alive interval the e2b SDK asks for (`Keepalive-Ping-Interval`, seconds), bounded to
 * 1 s..10 min; `undefined` when absent or malformed.
 */
export function keepaliveIntervalMs(header: string | null): number | undefined {
  if (header === null || !/^\d{1,6}$/.test(header.trim())) return undefined;
  const seconds = Number(header.trim());
  if (seconds <= 0) return undefined;
  return Math.min(Math.max(seconds, 1), 600) * 1000;
}

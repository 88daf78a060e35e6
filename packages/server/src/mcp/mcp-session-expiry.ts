import type { Clock } from '../sessions/clock.js';

/** Options of {@link McpSessionExpiry}. */
export interface McpSessionExpiryOptions {
  /** A session with no request for this long ends. */
  idleTimeoutMs: number;
  /**
   * A session whose client dropped its event stream (GET /mcp) and did not come back within
   * this time ends: the client is gone, as far as HTTP can tell.
   */
  hangUpGraceMs: number;
  clock: Clock;
}

interface Entry {
  lastUsedMs: number;
  /** Requests (POST, DELETE) still being answered: a long command is not idleness. */
  calls: number;
  /** Open event streams (GET). */
  streams: number;
  /** When the last event stream closed, unless a request or a stream came since. */
  hungUpAtMs: number | undefined;
}

/**
 * When each MCP-over-HTTP session should end: after an idle lease, or soon after its client
 * hangs up. The streamable HTTP transport says nothing when a client just goes away (only a
 * DELETE ends a session), but the event stream every SDK client holds open breaks when it does.
 */
export class McpSessionExpiry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: McpSessionExpiryOptions) {}

  track(id: string): void {
    this.entries.set(id, {
      lastUsedMs: this.options.clock.now(),
      calls: 0,
      streams: 0,
      hungUpAtMs: undefined,
    });
  }

  forget(id: string): void {
    this.entries.delete(id);
  }

  /** A request began; call the function returned when its answer is over. */
  callStarted(id: string): () => void {
    const entry = this.entries.get(id);
    if (entry === undefined) return () => undefined;
    entry.calls += 1;
    entry.lastUsedMs = this.options.clock.now();
    entry.hungUpAtMs = undefined;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      entry.calls -= 1;
      entry.lastUsedMs = this.options.clock.now();
    };
  }

  /** The client opened its event stream; call the function returned when it closes. */
  streamOpened(id: string): () => void {
    const entry = this.entries.get(id);
    if (entry === undefined) return () => undefined;
    entry.streams += 1;
    entry.hungUpAtMs = undefined;
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      entry.streams -= 1;
      if (entry.streams === 0) entry.hungUpAtMs = this.options.clock.now();
    };
  }

  /** The sessions to end now. */
  due(): string[] {
    const now = this.options.clock.now();
    const due: string[] = [];
    for (const [id, entry] of this.entries) {
      if (entry.calls > 0) continue;
      const hungUp =
        entry.hungUpAtMs !== undefined && now - entry.hungUpAtMs >= this.options.hangUpGraceMs;
      if (hungUp || now - entry.lastUsedMs >= this.options.idleTimeoutMs) due.push(id);
    }
    return due;
  }
}

/**
 * How much of the worker one agent channel (or all of them together) may use: chunks received
 * (each costs a call through the transport and the decoder, however small) and bytes, counted
 * in slices of 100 ms. Over either budget, reading pauses until the slice ends, so a flood costs
 * the worker a bounded amount of CPU per second instead of starving its event loop. One budget
 * per sandbox and one shared by the whole worker (an object passed in, never a module global).
 */
export interface ChannelBudgetLimits {
  chunksPerSecond: number;
  bytesPerSecond: number;
}

const SLICE_MS = 100;

export class ChannelBudget {
  private sliceStartMs = Number.NEGATIVE_INFINITY;
  private chunks = 0;
  private bytes = 0;
  /** Slices in which reading was paused (for tests and logs). */
  pausedSlices = 0;

  constructor(readonly limits: ChannelBudgetLimits) {}

  /**
   * Counts one chunk of `bytes` received at `nowMs`; answers how long reading should pause
   * (0 when within budget).
   */
  take(bytes: number, nowMs: number): number {
    if (nowMs - this.sliceStartMs >= SLICE_MS) {
      this.sliceStartMs = nowMs;
      this.chunks = 0;
      this.bytes = 0;
    }
    this.chunks += 1;
    this.bytes += bytes;
    const over =
      this.chunks > this.limits.chunksPerSecond / (1000 / SLICE_MS) ||
      this.bytes > this.limits.bytesPerSecond / (1000 / SLICE_MS);
    if (!over) return 0;
    this.pausedSlices += 1;
    return Math.max(1, this.sliceStartMs + SLICE_MS - nowMs);
  }
}

import { Transform, type TransformCallback } from 'node:stream';

/**
 * A token bucket of bytes per second shared by every connection of one session and direction,
 * so one sandbox cannot take more than its share of the worker's uplink. Burst = one second.
 */
export class BandwidthLimiter {
  private tokens: number;
  private last: number;

  constructor(
    readonly bytesPerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = bytesPerSecond;
    this.last = now();
  }

  /** Takes `bytes` from the bucket; returns how many milliseconds the caller must wait first. */
  take(bytes: number): number {
    if (this.bytesPerSecond <= 0) return 0;
    const t = this.now();
    this.tokens = Math.min(
      this.bytesPerSecond,
      this.tokens + ((t - this.last) / 1000) * this.bytesPerSecond,
    );
    this.last = t;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.bytesPerSecond) * 1000;
  }

  /** A pass-through stream that counts bytes and holds each chunk back as the bucket says. */
  throttle(onBytes: (n: number) => void): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, done: TransformCallback) => {
        onBytes(chunk.length);
        const wait = this.take(chunk.length);
        if (wait <= 0) return done(null, chunk);
        setTimeout(() => done(null, chunk), wait);
      },
    });
  }
}

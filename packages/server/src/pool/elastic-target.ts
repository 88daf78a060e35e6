export interface ElasticTargetOptions {
  /** The target when demand is calm (`--pool-size`). */
  base: number;
  /** Never below this (`--pool-min`). */
  min: number;
  /** Never above this (`--pool-max`). */
  max: number;
  /** After this long without a miss, the target takes one step back toward `base`. */
  shrinkAfterMs: number;
}

/**
 * How many warm containers the pool aims for. A claim that finds the pool empty (a miss) means
 * claims come faster than refills: the target grows by one, up to max. Once no miss has happened
 * for `shrinkAfterMs`, it steps back toward the base, half the distance per period, never below
 * min. Pure: the caller passes the time, so tests drive it with their own clock.
 */
export class ElasticTarget {
  private current: number;
  private calmSince: number;

  constructor(
    private readonly options: ElasticTargetOptions,
    now: number,
  ) {
    if (options.min > options.max) throw new Error('pool min exceeds pool max');
    this.current = this.clamp(options.base);
    this.calmSince = now;
  }

  get value(): number {
    return this.current;
  }

  /** Records a claim; `hit` is false when it found no warm container. */
  onClaim(now: number, hit: boolean): void {
    if (hit) return;
    this.current = this.clamp(this.current + 1);
    this.calmSince = now;
  }

  /** Called periodically: shrinks after a calm period. Returns true when the target changed. */
  tick(now: number): boolean {
    const floor = this.clamp(this.options.base);
    if (this.current <= floor || now - this.calmSince < this.options.shrinkAfterMs) return false;
    this.current = this.clamp(this.current - Math.ceil((this.current - floor) / 2));
    this.calmSince = now;
    return true;
  }

  private clamp(n: number): number {
    return Math.max(this.options.min, Math.min(this.options.max, n));
  }
}

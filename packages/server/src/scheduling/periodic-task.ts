/**
 * Runs a job every `intervalMs`, never twice at once: the next round is scheduled when the
 * current one ends, and `runNow()` during a round joins that round instead of starting another.
 * A slow engine call therefore delays the next check instead of piling checks on top of it.
 */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(
    private readonly job: () => Promise<void>,
    private readonly intervalMs: number,
    /** Called with what a round threw; a round's failure never stops the next one. */
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** Runs a round now, or joins the one in progress. */
  runNow(): Promise<void> {
    this.running ??= (async () => {
      try {
        await this.job();
      } catch (error) {
        this.onError(error);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** No new round starts after this; resolves when the round in progress (if any) ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runNow().then(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }
}

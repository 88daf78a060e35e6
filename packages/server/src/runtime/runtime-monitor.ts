import type { Logger } from 'pino';
import { SandpoolError } from '../errors/sandpool-error.js';
import { PeriodicTask } from '../scheduling/periodic-task.js';
import type { SandboxRuntime } from './sandbox-runtime.js';

export interface RuntimeMonitorOptions {
  runtime: SandboxRuntime;
  intervalMs: number;
  log: Logger;
  /** Called when the engine answers again after it did not. */
  onRecovered: () => void;
}

/**
 * Pings the engine in the background so that, while it is down, new sessions fail at once with
 * 503 instead of being handed a container that no longer runs, and so the pool and the sessions
 * are checked the moment it returns.
 */
export class RuntimeMonitor {
  private readonly task: PeriodicTask;
  private down: string | undefined;

  constructor(private readonly options: RuntimeMonitorOptions) {
    this.task = new PeriodicTask(() => this.checkOnce(), options.intervalMs);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** The error new sessions get while the engine is down. */
  refusal(): SandpoolError | undefined {
    if (this.down === undefined) return undefined;
    return new SandpoolError(
      'runtime_unavailable',
      `The Docker engine is not answering (${this.down}); retry shortly.`,
      5,
    );
  }

  /** One check now, or the one in progress: a ping that hangs is never joined by more pings. */
  check(): Promise<void> {
    return this.task.runNow();
  }

  private async checkOnce(): Promise<void> {
    try {
      await this.options.runtime.ping();
    } catch (error) {
      if (this.down === undefined)
        this.options.log.error({ err: error }, 'the container engine stopped answering');
      this.down = error instanceof Error ? error.message : String(error);
      return;
    }
    if (this.down !== undefined) {
      this.down = undefined;
      this.options.log.warn('the container engine answers again; checking the pool and sessions');
      this.options.onRecovered();
    }
  }
}

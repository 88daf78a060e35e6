import type { Logger } from 'pino';
import { SandpoolError } from '../errors/sandpool-error.js';
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
  private timer: NodeJS.Timeout | undefined;
  private down: string | undefined;

  constructor(private readonly options: RuntimeMonitorOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
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

  async check(): Promise<void> {
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

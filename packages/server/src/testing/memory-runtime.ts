import type {
  ExecOutcome,
  Sandbox,
  SandboxLabels,
  SandboxRuntime,
  SandboxSummary,
} from '../runtime/sandbox-runtime.js';

/**
 * An in-memory runtime for the unit tests of the pool, the sessions and the reconciler: the
 * logic under test is ours; the black-box tests in test/ run the same code against real Docker.
 * Starts resolve when the test says so (`finishStarts`), so races can be driven step by step.
 */
export class MemoryRuntime implements SandboxRuntime {
  readonly boxes = new Map<string, { labels: SandboxLabels; running: boolean }>();
  readonly pending: { resolve: () => void; reject: (error: Error) => void }[] = [];
  /** When true, create() resolves at once. */
  autoStart = true;
  created = 0;
  removed = 0;
  stopped = 0;
  failRemovals = false;
  private next = 0;

  async create(spec: { labels: SandboxLabels }): Promise<Sandbox> {
    if (!this.autoStart) {
      await new Promise<void>((resolve, reject) => this.pending.push({ resolve, reject }));
    }
    const id = `box-${++this.next}`;
    this.boxes.set(id, { labels: spec.labels, running: true });
    this.created++;
    return this.sandbox(id, spec.labels);
  }

  /** Lets `n` waiting starts finish (all when n is omitted). */
  finishStarts(n = this.pending.length): void {
    for (const start of this.pending.splice(0, n)) start.resolve();
  }

  failStarts(n = this.pending.length): void {
    for (const start of this.pending.splice(0, n)) start.reject(new Error('engine said no'));
  }

  /** Creates a box behind the pool's back, as a leaked container would be. */
  leak(labels: SandboxLabels): string {
    const id = `leak-${++this.next}`;
    this.boxes.set(id, { labels, running: true });
    return id;
  }

  list(labels: SandboxLabels): Promise<SandboxSummary[]> {
    const found: SandboxSummary[] = [];
    for (const [id, box] of this.boxes) {
      if (Object.entries(labels).every(([k, v]) => box.labels[k] === v)) {
        found.push({ id, labels: box.labels, running: box.running });
      }
    }
    return Promise.resolve(found);
  }

  remove(id: string): Promise<void> {
    if (this.failRemovals) return Promise.reject(new Error('removal failed'));
    if (this.boxes.delete(id)) this.removed++;
    return Promise.resolve();
  }

  stop(id: string): Promise<void> {
    const box = this.boxes.get(id);
    if (box) box.running = false;
    this.stopped++;
    return Promise.resolve();
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private sandbox(id: string, labels: SandboxLabels): Sandbox {
    const unsupported = (): Promise<never> => Promise.reject(new Error('not in memory'));
    return {
      id,
      labels,
      exec: (): Promise<ExecOutcome> => unsupported(),
      writeFile: unsupported,
      statFile: unsupported,
      readFile: unsupported,
      listFiles: unsupported,
      removeFile: unsupported,
      isAlive: () => Promise.resolve(this.boxes.get(id)?.running === true),
      destroy: () => this.remove(id),
    };
  }
}

/** A clock the test moves by hand. */
export class ManualClock {
  constructor(public time = 0) {}
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

import type { Processes, ProcessExit, TerminalSize } from './processes.js';

/** Options of {@link Pty.create}. */
export interface PtyCreateOptions extends Partial<TerminalSize> {
  /** What to run; default an interactive `bash -i`. A string runs through `/bin/sh -c`. */
  command?: string | readonly string[];
  /** Working directory; default the home. */
  cwd?: string;
  /** Extra environment variables (`TERM` is `xterm-256color` unless set here). */
  env?: Record<string, string>;
  /** A tag to find the terminal again by. */
  tag?: string;
  /** Kill it after this many milliseconds; default `0`: until it exits or the session ends. */
  timeoutMs?: number;
  /** Called with the terminal's output as it arrives (also what it wrote before). */
  onData?: (data: string) => void;
  /** Aborts following the output (the terminal keeps running until killed). */
  signal?: AbortSignal;
}

/**
 * An interactive terminal in the sandbox. Read its output through `onData` or by iterating it;
 * type with {@link PtySession.sendInput}.
 *
 * ```ts
 * const term = await sandbox.pty.create({ cols: 80, rows: 24 });
 * await term.sendInput('echo hi\r');
 * for await (const data of term) process.stdout.write(data);
 * ```
 */
export class PtySession implements AsyncIterable<string> {
  private readonly queue: string[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private readonly controller = new AbortController();
  private readonly exit: Promise<ProcessExit>;

  /** @internal */
  constructor(
    private readonly processes: Processes,
    /** The terminal's process id inside the sandbox. */
    readonly pid: number,
    onData: ((data: string) => void) | undefined,
    signal: AbortSignal | undefined,
  ) {
    const connection = processes.connect(pid, {
      onStdout: (data) => {
        onData?.(data);
        this.queue.push(data);
        this.wake?.();
      },
      signal: signal ? AbortSignal.any([signal, this.controller.signal]) : this.controller.signal,
    });
    this.exit = connection.wait().finally(() => {
      this.ended = true;
      this.wake?.();
    });
    this.exit.catch(() => undefined); // observed by wait()
  }

  /** Types into the terminal (`\r` is Enter, `\x03` is Ctrl-C). */
  async sendInput(data: string | Uint8Array): Promise<void> {
    await this.processes.sendStdin(this.pid, data);
  }

  async resize(size: TerminalSize): Promise<void> {
    await this.processes.resize(this.pid, size);
  }

  /** Kills the terminal's process group. */
  async kill(): Promise<void> {
    await this.processes.kill(this.pid);
  }

  /** Resolves when the terminal's program exits. */
  wait(): Promise<ProcessExit> {
    return this.exit;
  }

  /** Stops following the output; the terminal keeps running. */
  disconnect(): void {
    this.controller.abort();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for (;;) {
      const next = this.queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

/** Terminals of a sandbox (`sandbox.pty`), on top of its {@link Processes}. */
export class Pty {
  /** @internal */
  constructor(private readonly processes: Processes) {}

  /** Starts a program on a pseudo-terminal (default 80×24, `bash -i`) and follows its output. */
  async create(options: PtyCreateOptions = {}): Promise<PtySession> {
    const started = await this.processes.start(options.command ?? ['/bin/bash', '-i'], {
      cwd: options.cwd,
      env: options.env,
      tag: options.tag,
      timeoutMs: options.timeoutMs,
      pty: { cols: options.cols ?? 80, rows: options.rows ?? 24 },
      signal: options.signal,
    });
    return new PtySession(this.processes, started.pid, options.onData, options.signal);
  }

  /** Attaches to a terminal started earlier (by pid or tag): its screen so far, then live. */
  connect(pid: number, options: Pick<PtyCreateOptions, 'onData' | 'signal'> = {}): PtySession {
    return new PtySession(this.processes, pid, options.onData, options.signal);
  }

  /** Resizes a terminal by pid. */
  async resize(pid: number, size: TerminalSize): Promise<void> {
    await this.processes.resize(pid, size);
  }

  /** Types into a terminal by pid. */
  async sendInput(pid: number, data: string | Uint8Array): Promise<void> {
    await this.processes.sendStdin(pid, data);
  }
}

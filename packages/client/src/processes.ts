import { errorFromCode, isApiErrorCode, SandboxError } from './errors.js';
import { responseBody, type HttpTransport } from './http-transport.js';
import { readNdjson } from './ndjson.js';

/** A terminal's size in characters. */
export interface TerminalSize {
  cols: number;
  rows: number;
}

/** Options of {@link Processes.start}. */
export interface StartProcessOptions {
  /** Working directory inside the sandbox; default the home, `/home/sandboxuser`. */
  cwd?: string;
  /** Extra environment variables for this process. */
  env?: Record<string, string>;
  /** A name to find the process by instead of its pid (letters, digits, `_ . -`). */
  tag?: string;
  /** Keep stdin open for {@link Processes.sendStdin}; default `false`. */
  stdin?: boolean;
  /**
   * Kill the process group after this many milliseconds; default `0`, which means it runs until
   * it exits or the session ends.
   */
  timeoutMs?: number;
  /** Run on a pseudo-terminal of this size (see {@link Sandbox.pty} for an interactive one). */
  pty?: TerminalSize;
  /** Aborts the call (the process, once started, keeps running). */
  signal?: AbortSignal;
}

/** A process just started. */
export interface StartedProcess {
  pid: number;
  tag: string | null;
  startedAt: string;
}

/** A running or recently exited process. */
export interface ProcessInfo extends StartedProcess {
  command: string;
  argv: string[];
  cwd: string;
  pty: boolean;
  running: boolean;
  /** `null` while it runs; 128 + n after a death by signal n. */
  exitCode: number | null;
  timedOut: boolean;
  endedAt: string | null;
}

/** One event of a process's output stream. */
export type ProcessOutputEvent =
  | { type: 'stdout' | 'stderr'; data: string }
  /** Older output was dropped before this reader got it (the server keeps a bounded tail). */
  | { type: 'truncated'; droppedBytes: number }
  | { type: 'exit'; exitCode: number; timedOut: boolean; endedAt: string };

/** How a process ended. */
export interface ProcessExit {
  exitCode: number;
  timedOut: boolean;
}

/** Signals {@link Processes.signal} may send. */
export type ProcessSignalName =
  | 'SIGHUP'
  | 'SIGINT'
  | 'SIGQUIT'
  | 'SIGKILL'
  | 'SIGUSR1'
  | 'SIGUSR2'
  | 'SIGTERM'
  | 'SIGCONT'
  | 'SIGSTOP'
  | 'SIGTSTP'
  | 'SIGWINCH';

/** Options of {@link Processes.connect}. */
export interface ConnectProcessOptions {
  /** Called with each piece of stdout: first what the process wrote earlier, then live. */
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
  /** Aborts following (the process keeps running). */
  signal?: AbortSignal;
}

/** A client following a process's output; see {@link Processes.connect}. */
export interface ProcessConnection {
  readonly pid: number | string;
  /** Resolves when the process exits; rejects if the stream breaks. */
  wait(): Promise<ProcessExit>;
  /** Stops following; the process keeps running. */
  disconnect(): void;
}

/**
 * Background processes of a sandbox (`sandbox.processes`): they outlive the call that started
 * them, keep a bounded tail of their output that any number of clients replay and follow, and
 * end with their session. Select a process by pid or by its tag.
 *
 * ```ts
 * const server = await sandbox.processes.start('python3 -m http.server 8000', { tag: 'web' });
 * for await (const event of sandbox.processes.output('web')) console.log(event);
 * ```
 */
export class Processes {
  /** @internal */
  constructor(
    private readonly transport: HttpTransport,
    private readonly route: (suffix: string) => string,
  ) {}

  /** Starts a process and answers at once. A string runs through `/bin/sh -c`. */
  async start(
    command: string | readonly string[],
    options: StartProcessOptions = {},
  ): Promise<StartedProcess> {
    const answer = await this.transport.requestJson({
      method: 'POST',
      path: this.route('/processes'),
      json: {
        ...(typeof command === 'string' ? { command } : { argv: [...command] }),
        cwd: options.cwd,
        env: options.env,
        tag: options.tag,
        stdin: options.stdin,
        timeout_ms: options.timeoutMs,
        pty: options.pty,
      },
      signal: options.signal,
    });
    const body = asObject(answer);
    return {
      pid: Number(body.pid),
      tag: typeof body.tag === 'string' ? body.tag : null,
      startedAt: String(body.started_at),
    };
  }

  /** Running and recently exited processes. */
  async list(options: { signal?: AbortSignal } = {}): Promise<ProcessInfo[]> {
    const answer = asObject(
      await this.transport.requestJson({
        method: 'GET',
        path: this.route('/processes'),
        signal: options.signal,
      }),
    );
    if (!Array.isArray(answer.processes)) throw invalid('a process list without processes');
    return answer.processes.map(parseProcessInfo);
  }

  /** One process, by pid or tag. */
  async get(
    pidOrTag: number | string,
    options: { signal?: AbortSignal } = {},
  ): Promise<ProcessInfo> {
    return parseProcessInfo(
      await this.transport.requestJson({
        method: 'GET',
        path: this.processRoute(pidOrTag),
        signal: options.signal,
      }),
    );
  }

  /**
   * Yields what the process wrote so far, then its live output, then one `exit` event. Leaving
   * the loop disconnects; the process keeps running. With `follow: false` it stops after what
   * was written so far (with the `exit` only if the process already ended).
   */
  async *output(
    pidOrTag: number | string,
    options: { signal?: AbortSignal; follow?: boolean } = {},
  ): AsyncGenerator<ProcessOutputEvent, void, undefined> {
    const path = this.processRoute(pidOrTag, '/output');
    const follow = options.follow !== false;
    const response = await this.transport.request({
      method: 'GET',
      path,
      query: follow ? undefined : { follow: 'false' },
      accept: 'application/x-ndjson',
      timeoutMs: null,
      signal: options.signal,
    });
    const body = responseBody(response);
    if (body === null) throw invalid('an output stream without a body');
    const url = this.transport.urlFor(path);
    let exited = false;
    try {
      for await (const line of readNdjson(body)) {
        const event = parseOutputEvent(line);
        if (event === undefined) continue;
        yield event;
        if (event.type === 'exit') exited = true;
      }
    } catch (error) {
      if (error instanceof SandboxError) throw error;
      if (error instanceof SyntaxError) throw invalid(`${url}: ${error.message}`);
      throw this.transport.networkError(error, url, options.signal, null);
    }
    if (!exited && follow) throw invalid(`GET ${url}: the stream ended before the exit`);
  }

  /**
   * Follows a running (or exited) process: the callbacks see its earlier output, then the live
   * rest; `wait()` resolves with its exit.
   */
  connect(pidOrTag: number | string, options: ConnectProcessOptions = {}): ProcessConnection {
    const controller = new AbortController();
    const signal = options.signal
      ? AbortSignal.any([options.signal, controller.signal])
      : controller.signal;
    const done = (async (): Promise<ProcessExit> => {
      for await (const event of this.output(pidOrTag, { signal })) {
        if (event.type === 'stdout') options.onStdout?.(event.data);
        else if (event.type === 'stderr') options.onStderr?.(event.data);
        else if (event.type === 'exit')
          return { exitCode: event.exitCode, timedOut: event.timedOut };
      }
      throw invalid('the output stream ended before the exit');
    })();
    done.catch(() => undefined); // observed by wait()
    return { pid: pidOrTag, wait: () => done, disconnect: () => controller.abort() };
  }

  /** Sends input; `eof: true` closes stdin afterwards (or sends ^D to a terminal). */
  async sendStdin(
    pidOrTag: number | string,
    data: string | Uint8Array,
    options: { eof?: boolean; signal?: AbortSignal } = {},
  ): Promise<void> {
    await this.transport.request({
      method: 'POST',
      path: this.processRoute(pidOrTag, '/stdin'),
      query: options.eof === true ? { eof: 'true' } : undefined,
      body: typeof data === 'string' ? new TextEncoder().encode(data) : data,
      signal: options.signal,
    });
  }

  /** Sends a signal to the process's group. */
  async signal(
    pidOrTag: number | string,
    signal: ProcessSignalName,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    await this.transport.request({
      method: 'POST',
      path: this.processRoute(pidOrTag, '/signal'),
      json: { signal },
      signal: options.signal,
    });
  }

  /** Resizes a process's terminal. */
  async resize(
    pidOrTag: number | string,
    size: TerminalSize,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    await this.transport.request({
      method: 'POST',
      path: this.processRoute(pidOrTag, '/resize'),
      json: { cols: size.cols, rows: size.rows },
      signal: options.signal,
    });
  }

  /** Kills the process's group and resolves with the ended process. */
  async kill(
    pidOrTag: number | string,
    options: { signal?: AbortSignal } = {},
  ): Promise<ProcessInfo> {
    return parseProcessInfo(
      await this.transport.requestJson({
        method: 'DELETE',
        path: this.processRoute(pidOrTag),
        signal: options.signal,
      }),
    );
  }

  private processRoute(pidOrTag: number | string, suffix = ''): string {
    return this.route(`/processes/${encodeURIComponent(String(pidOrTag))}${suffix}`);
  }
}

function invalid(message: string): SandboxError {
  return new SandboxError('invalid_response', message);
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('the server answered something that is not a JSON object');
  }
  return value as Record<string, unknown>;
}

function parseProcessInfo(value: unknown): ProcessInfo {
  const body = asObject(value);
  return {
    pid: Number(body.pid),
    tag: typeof body.tag === 'string' ? body.tag : null,
    command: String(body.command),
    argv: Array.isArray(body.argv) ? body.argv.map(String) : [],
    cwd: String(body.cwd),
    pty: body.pty === true,
    running: body.running === true,
    exitCode: typeof body.exit_code === 'number' ? body.exit_code : null,
    timedOut: body.timed_out === true,
    startedAt: String(body.started_at),
    endedAt: typeof body.ended_at === 'string' ? body.ended_at : null,
  };
}

/** One line of an output stream; a server `error` line is thrown as a typed error. */
function parseOutputEvent(value: unknown): ProcessOutputEvent | undefined {
  const body = asObject(value);
  switch (body.type) {
    case 'stdout':
    case 'stderr':
      return { type: body.type, data: String(body.data) };
    case 'truncated':
      return { type: 'truncated', droppedBytes: Number(body.dropped_bytes) };
    case 'exit':
      return {
        type: 'exit',
        exitCode: Number(body.exit_code),
        timedOut: body.timed_out === true,
        endedAt: String(body.ended_at),
      };
    case 'error': {
      const error = asObject(body.error);
      const message = String(error.message);
      throw isApiErrorCode(error.code)
        ? errorFromCode(error.code, message)
        : new SandboxError('invalid_response', message);
    }
    default:
      return undefined; // a newer server's event
  }
}

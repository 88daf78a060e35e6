import { posix } from 'node:path';
import { SandpoolError } from '../errors/sandpool-error.js';
import { resolveTimeoutMs } from './timeout-limits.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import type { Session, SessionManager } from '../sessions/session-manager.js';
import { SANDBOX_HOME } from '../files/sandbox-path.js';
import type { ExecOutcome } from '../runtime/sandbox-runtime.js';
import { OutputCapture } from './output-capture.js';
import { ExecHistory, type ExecRecord } from './exec-history.js';

export interface ExecInput {
  command?: string;
  argv?: string[];
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
  timeoutMs?: number;
}

export interface ExecResultBody {
  stdout: string;
  stderr: string;
  exit_code: number;
  duration_ms: number;
  timed_out: boolean;
  truncated: boolean;
}

export type ExecEvent =
  | { type: 'stdout' | 'stderr'; data: string }
  | ({ type: 'exit' } & Omit<ExecResultBody, 'stdout' | 'stderr'>);

export interface ExecServiceOptions {
  sessions: SessionManager;
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  outputLimitBytes: number;
  metrics: WorkerMetrics;
  /** Execs kept per session for `GET /v1/sessions/{id}/execs` (default 50). */
  historySize?: number;
  /** Epoch milliseconds (tests inject a clock); default `Date.now`. */
  now?: () => number;
}

/** Runs commands in sessions, with timeouts, output caps and loss detection. */
export class ExecService {
  private readonly history: ExecHistory<Session>;
  private readonly now: () => number;

  constructor(private readonly options: ExecServiceOptions) {
    this.history = new ExecHistory(options.historySize ?? 50);
    this.now = options.now ?? Date.now;
  }

  /** The session's recent execs, newest first, with exit codes and durations. */
  recent(sessionId: string): ExecRecord[] {
    return this.history.recent(this.options.sessions.get(sessionId));
  }

  /** Runs to the end and answers with the whole (capped) output. */
  async run(sessionId: string, input: ExecInput, signal?: AbortSignal): Promise<ExecResultBody> {
    const stdout = new OutputCapture(this.options.outputLimitBytes);
    const stderr = new OutputCapture(this.options.outputLimitBytes);
    const outcome = await this.execute(sessionId, input, signal, {
      onStdout: (chunk) => stdout.append(chunk),
      onStderr: (chunk) => stderr.append(chunk),
    });
    return {
      stdout: stdout.text(),
      stderr: stderr.text(),
      ...exitFields(outcome, stdout.truncated || stderr.truncated),
    };
  }

  /**
   * Runs and hands each piece of output to `emit` as it arrives; the command waits while `emit`
   * does (backpressure). The last event is the exit.
   */
  async stream(
    sessionId: string,
    input: ExecInput,
    emit: (event: ExecEvent) => Promise<void> | void,
    signal?: AbortSignal,
  ): Promise<void> {
    const stdout = new OutputCapture(this.options.outputLimitBytes);
    const stderr = new OutputCapture(this.options.outputLimitBytes);
    const forward = (type: 'stdout' | 'stderr', capture: OutputCapture) => (chunk: Buffer) => {
      const part = capture.take(chunk);
      return part.length > 0 ? emit({ type, data: part.toString('utf8') }) : undefined;
    };
    const outcome = await this.execute(sessionId, input, signal, {
      onStdout: forward('stdout', stdout),
      onStderr: forward('stderr', stderr),
    });
    await emit({ type: 'exit', ...exitFields(outcome, stdout.truncated || stderr.truncated) });
  }

  /** Throws what `run` or `stream` would throw before starting, so a stream can fail with a status. */
  check(sessionId: string, input: ExecInput): void {
    this.options.sessions.get(sessionId);
    commandArgv(input);
    this.timeoutOf(input);
  }

  private timeoutOf(input: ExecInput): number {
    return resolveTimeoutMs(input.timeoutMs, this.options);
  }

  private async execute(
    sessionId: string,
    input: ExecInput,
    signal: AbortSignal | undefined,
    sinks: { onStdout(c: Buffer): void | Promise<void>; onStderr(c: Buffer): void | Promise<void> },
  ): Promise<ExecOutcome> {
    const session = this.options.sessions.get(sessionId);
    const argv = commandArgv(input);
    const timeoutMs = this.timeoutOf(input);
    const stop = this.options.metrics.execSeconds.startTimer();
    const startedAt = this.now();
    const record = (
      fields: Omit<ExecRecord, 'command' | 'started_at' | 'duration_ms'>,
      ms?: number,
    ) =>
      this.history.record(session, {
        command: input.command ?? argv.join(' '),
        started_at: new Date(startedAt).toISOString(),
        duration_ms: Math.round(ms ?? Math.max(0, this.now() - startedAt)),
        ...fields,
      });
    try {
      const outcome = await session.sandbox.exec(
        {
          argv,
          cwd: resolveCwd(input.cwd),
          env: { ...session.env, ...input.env },
          stdin: input.stdin === undefined ? undefined : Buffer.from(input.stdin),
          timeoutMs,
          signal,
        },
        sinks,
      );
      record(
        { exit_code: outcome.exitCode, timed_out: outcome.timedOut, error: null },
        outcome.durationMs,
      );
      return outcome;
    } catch (error) {
      record({
        exit_code: null,
        timed_out: false,
        error: error instanceof SandpoolError ? error.code : 'internal_error',
      });
      if (error instanceof SandpoolError && error.code === 'session_lost') {
        await this.options.sessions.markLost(sessionId, error.message);
      }
      throw error;
    } finally {
      stop();
    }
  }
}

function exitFields(
  outcome: ExecOutcome,
  truncated: boolean,
): Omit<ExecResultBody, 'stdout' | 'stderr'> {
  return {
    exit_code: outcome.exitCode,
    duration_ms: outcome.durationMs,
    timed_out: outcome.timedOut,
    truncated,
  };
}

/** `command` runs through /bin/sh -c; `argv` runs as given. Exactly one of them. */
export function commandArgv(input: Pick<ExecInput, 'command' | 'argv'>): string[] {
  if ((input.command === undefined) === (input.argv === undefined)) {
    throw new SandpoolError(
      'invalid_request',
      'Give exactly one of "command" (a shell string) or "argv" (an array).',
    );
  }
  if (input.argv !== undefined) {
    if (input.argv.length === 0)
      throw new SandpoolError('invalid_request', '"argv" must name a program.');
    return input.argv;
  }
  return ['/bin/sh', '-c', input.command ?? ''];
}

export function resolveCwd(cwd: string | undefined): string {
  if (cwd === undefined || cwd === '') return SANDBOX_HOME;
  if (cwd.includes('\0')) throw new SandpoolError('invalid_path', 'cwd contains a NUL byte.');
  return posix.normalize(cwd.startsWith('/') ? cwd : `${SANDBOX_HOME}/${cwd}`);
}

import type { Logger } from 'pino';
import { SandpoolError } from '../errors/sandpool-error.js';
import { commandArgv, resolveCwd } from '../exec/exec-service.js';
import type { Session, SessionManager } from '../sessions/session-manager.js';
import type {
  BackgroundProcess,
  OutputStream,
  ProcessSignal,
  SandboxProcesses,
  TerminalSize,
} from '../runtime/sandbox-processes.js';
import { OutputBudget, OutputLog, type OutputChunk, type OutputCursor } from './output-log.js';

export interface ProcessLimits {
  /** Running and recently exited processes a session keeps at once. */
  maxPerSession: number;
  /** Output bytes kept per process (the tail a new reader replays). */
  bufferBytesPerProcess: number;
  /** Output bytes all processes of the worker keep together. */
  bufferBytesPerWorker: number;
  /** How long an exited process's status and output stay readable. */
  retainExitedMs: number;
}

export interface ProcessServiceOptions {
  sessions: SessionManager;
  limits: ProcessLimits;
  log: Logger;
}

export interface StartProcessInput {
  command?: string;
  argv?: string[];
  cwd?: string;
  env?: Record<string, string>;
  tag?: string;
  stdin?: boolean;
  /** 0 or absent: until the session ends. */
  timeoutMs?: number;
  pty?: TerminalSize;
}

/** What the API shows of a process. */
export interface ProcessView {
  pid: number;
  tag: string | null;
  command: string;
  argv: string[];
  cwd: string;
  pty: boolean;
  running: boolean;
  exit_code: number | null;
  timed_out: boolean;
  started_at: string;
  ended_at: string | null;
}

export interface StartedProcess {
  pid: number;
  tag: string | null;
  started_at: string;
}

/** One line of an output stream. */
export type ProcessOutputEvent =
  | { type: 'start'; pid: number; tag: string | null; pty: boolean; running: boolean }
  | { type: OutputStream; data: string }
  | { type: 'truncated'; dropped_bytes: number }
  | { type: 'exit'; exit_code: number; timed_out: boolean; ended_at: string }
  | { type: 'error'; error: { code: string; message: string } };

/** A raw piece for a terminal (the WebSocket): bytes, a truncation, or the end. */
export type TerminalEvent =
  | { type: 'data'; data: Buffer }
  | { type: 'truncated'; dropped_bytes: number }
  | { type: 'exit'; exit_code: number; timed_out: boolean };

interface ManagedProcess {
  readonly sessionId: string;
  readonly pid: number;
  readonly tag: string | undefined;
  readonly argv: string[];
  readonly command: string;
  readonly cwd: string;
  readonly pty: boolean;
  /** Whether stdin stays open for input (always for a terminal). */
  readonly stdin: boolean;
  readonly startedAt: number;
  readonly handle: BackgroundProcess;
  readonly output: OutputLog;
  endedAt?: number;
  exitCode?: number;
  /** Set when the sandbox went away before the process reported its exit. */
  lostError?: SandpoolError;
  timedOut: boolean;
  /** Dropped from the table; nothing may schedule work for it any more. */
  forgotten?: boolean;
  timeoutTimer?: NodeJS.Timeout;
  retainTimer?: NodeJS.Timeout;
}

interface SessionTable {
  byPid: Map<number, ManagedProcess>;
  starting: number;
}

const TAG_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** setTimeout's ceiling; longer deadlines are refused. */
const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * Background processes of sessions: started in the sandbox, found again by pid or tag, with a
 * bounded output tail any number of clients replay and follow. A process ends with its session
 * (its sandbox is destroyed) or at its deadline; clients that come and go never affect it.
 */
export class ProcessService {
  private readonly tables = new Map<string, SessionTable>();
  private readonly budget: OutputBudget;

  constructor(private readonly options: ProcessServiceOptions) {
    this.budget = new OutputBudget(options.limits.bufferBytesPerWorker);
  }

  /** Output bytes kept by all processes of this worker. */
  get bufferedBytes(): number {
    return this.budget.usedBytes;
  }

  async start(sessionId: string, input: StartProcessInput): Promise<StartedProcess> {
    const session = this.options.sessions.get(sessionId);
    const runtime = processesOf(session);
    const argv = commandArgv(input);
    const cwd = resolveCwd(input.cwd);
    const tag = input.tag;
    if (tag !== undefined && !TAG_PATTERN.test(tag)) {
      throw new SandpoolError(
        'invalid_request',
        'A tag starts with a letter or _, then up to 63 letters, digits, _, . or -.',
      );
    }
    const timeoutMs = input.timeoutMs ?? 0;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMEOUT_MS) {
      throw new SandpoolError(
        'invalid_request',
        `timeout_ms must be 0 (until the session ends) or up to ${MAX_TIMEOUT_MS}.`,
      );
    }
    const table = this.tableOf(sessionId);
    if (tag !== undefined && this.findRunningByTag(table, tag)) {
      throw new SandpoolError(
        'invalid_request',
        `A process tagged "${tag}" already runs in this session; pick another tag or kill it first.`,
      );
    }
    this.makeRoom(table);
    const output = new OutputLog(this.options.limits.bufferBytesPerProcess, this.budget);
    // Set once the process runs; its events before that only reach its output log.
    // An exit or a loss can arrive in the same read as the start, before `managed` exists.
    const ref: { managed?: ManagedProcess; exitCode?: number; lost?: Error } = {};
    table.starting++;
    let handle: BackgroundProcess;
    try {
      handle = await runtime.start(
        {
          argv,
          cwd,
          env: { ...session.env, ...input.env },
          stdin: input.stdin === true,
          pty: input.pty,
        },
        {
          onOutput: (stream, chunk) => output.append(stream, chunk),
          onExit: (exitCode) => {
            if (ref.managed) this.ended(ref.managed, exitCode);
            else ref.exitCode = exitCode;
          },
          onLost: (error) => {
            if (ref.managed) this.lost(ref.managed, error);
            else ref.lost = error;
          },
        },
      );
    } catch (error) {
      output.release();
      await this.noteLoss(sessionId, error);
      throw error;
    } finally {
      table.starting--;
    }
    const stale = table.byPid.get(handle.pid);
    if (stale) this.forget(stale); // a pid reused after an exited process: the new one wins
    const managed: ManagedProcess = {
      sessionId,
      pid: handle.pid,
      tag,
      argv,
      command: input.command ?? argv.join(' '),
      cwd,
      pty: input.pty !== undefined,
      stdin: input.pty !== undefined || input.stdin === true,
      startedAt: Date.now(),
      handle,
      output,
      timedOut: false,
    };
    ref.managed = managed;
    table.byPid.set(handle.pid, managed);
    if (ref.lost !== undefined) this.lost(managed, ref.lost);
    else if (ref.exitCode !== undefined) this.ended(managed, ref.exitCode);
    if (timeoutMs > 0 && managed.endedAt === undefined) {
      const target = managed;
      target.timeoutTimer = setTimeout(() => {
        target.timedOut = true;
        target.handle.kill();
      }, timeoutMs);
      target.timeoutTimer.unref();
    }
    this.options.log.info(
      { sessionId, pid: handle.pid, tag, pty: managed.pty },
      'background process started',
    );
    return { pid: handle.pid, tag: tag ?? null, started_at: iso(managed.startedAt) };
  }

  list(sessionId: string): ProcessView[] {
    this.options.sessions.get(sessionId);
    const table = this.tables.get(sessionId);
    if (!table) return [];
    return [...table.byPid.values()].sort((a, b) => a.startedAt - b.startedAt).map(view);
  }

  get(sessionId: string, selector: string): ProcessView {
    return view(this.find(sessionId, selector));
  }

  /**
   * Replays the kept output, then follows it live until the process ends (then an `exit` event)
   * or `signal` aborts. `emit` may wait (backpressure); a reader that falls behind the kept tail
   * gets a `truncated` event instead of holding memory.
   */
  async follow(
    sessionId: string,
    selector: string,
    emit: (event: ProcessOutputEvent) => Promise<void> | void,
    signal?: AbortSignal,
    { live = true }: { live?: boolean } = {},
  ): Promise<void> {
    const process = this.find(sessionId, selector);
    // A first line at once: the client knows it is attached (and headers go out) before output.
    await emit({
      type: 'start',
      pid: process.pid,
      tag: process.tag ?? null,
      pty: process.pty,
      running: process.endedAt === undefined,
    });
    await this.pump(
      process,
      signal,
      async (chunk) => emit({ type: chunk.stream, data: chunk.data }),
      emit,
      live,
    );
  }

  /** As `follow`, in raw bytes, for a terminal. */
  async followRaw(
    sessionId: string,
    selector: string,
    emit: (event: TerminalEvent) => Promise<void> | void,
    signal?: AbortSignal,
  ): Promise<void> {
    const process = this.find(sessionId, selector);
    await this.pump(
      process,
      signal,
      async (chunk) => emit({ type: 'data', data: Buffer.from(chunk.data, 'utf8') }),
      async (event) => {
        if (event.type === 'truncated' || event.type === 'exit') await emit(event);
      },
    );
  }

  /** Throws what `follow` would throw before streaming, so a route can answer with a status. */
  check(sessionId: string, selector: string): ProcessView {
    return this.get(sessionId, selector);
  }

  writeStdin(sessionId: string, selector: string, data: Uint8Array, eof: boolean): void {
    const process = this.findRunning(sessionId, selector);
    if (!process.stdin) {
      throw new SandpoolError(
        'invalid_request',
        `Process ${process.pid} was started without stdin; start it with "stdin": true to send it input.`,
      );
    }
    if (data.length > 0) process.handle.writeStdin(data);
    if (eof) process.handle.endStdin();
  }

  signal(sessionId: string, selector: string, name: ProcessSignal): void {
    this.findRunning(sessionId, selector).handle.signal(name);
  }

  resize(sessionId: string, selector: string, size: TerminalSize): void {
    const process = this.findRunning(sessionId, selector);
    if (!process.pty) {
      throw new SandpoolError(
        'invalid_request',
        `Process ${process.pid} has no terminal; start it with "pty" to resize it.`,
      );
    }
    process.handle.resize(size);
  }

  /** Kills the process group; resolves once the process ended. */
  async kill(sessionId: string, selector: string): Promise<ProcessView> {
    const process = this.find(sessionId, selector);
    if (process.endedAt === undefined) {
      process.handle.kill();
      while (!process.output.ended) await process.output.changed();
    }
    return view(process);
  }

  /** Forgets every process (the worker is closing; sandboxes go with their sessions). */
  close(): void {
    for (const table of this.tables.values()) {
      for (const process of table.byPid.values()) this.forget(process);
    }
    this.tables.clear();
  }

  // --- plumbing ---------------------------------------------------------------------------------

  private async pump(
    process: ManagedProcess,
    signal: AbortSignal | undefined,
    emitChunk: (chunk: OutputChunk) => Promise<void>,
    emitEvent: (event: ProcessOutputEvent) => Promise<void> | void,
    live = true,
  ): Promise<void> {
    let cursor: OutputCursor = { seq: 0, offset: 0 };
    for (;;) {
      if (signal?.aborted) return;
      const { droppedBytes, chunks } = process.output.read(cursor);
      if (droppedBytes > 0) {
        await emitEvent({ type: 'truncated', dropped_bytes: droppedBytes });
        if (chunks.length === 0)
          cursor = { seq: process.output.endSeq, offset: process.output.writtenBytes };
      }
      for (const chunk of chunks) {
        if (signal?.aborted) return;
        await emitChunk(chunk);
        cursor = OutputLog.after(chunk);
      }
      if (chunks.length > 0) continue; // more may have come while the client read
      if (process.output.ended) {
        if (process.lostError) {
          await emitEvent({ type: 'error', error: process.lostError.toBody().error });
        } else {
          await emitEvent({
            type: 'exit',
            exit_code: process.exitCode ?? -1,
            timed_out: process.timedOut,
            ended_at: iso(process.endedAt ?? Date.now()),
          });
        }
        return;
      }
      if (!live) return; // only what was kept: the process still runs
      await process.output.changed(signal);
    }
  }

  private ended(process: ManagedProcess, exitCode: number): void {
    if (process.endedAt !== undefined) return;
    process.endedAt = Date.now();
    process.exitCode = exitCode;
    clearTimeout(process.timeoutTimer);
    process.output.close();
    if (process.forgotten) return;
    this.options.log.info(
      { sessionId: process.sessionId, pid: process.pid, exitCode, timedOut: process.timedOut },
      'background process ended',
    );
    process.retainTimer = setTimeout(
      () => this.forget(process),
      this.options.limits.retainExitedMs,
    );
    process.retainTimer.unref();
  }

  private lost(process: ManagedProcess, error: Error): void {
    process.lostError =
      error instanceof SandpoolError
        ? error
        : new SandpoolError('session_lost', `The sandbox went away: ${error.message}`);
    this.ended(process, 137);
    // Nobody can read a process of a session that is gone: free its output at once.
    void this.noteLoss(process.sessionId, error).then(() => {
      if (!this.isActive(process.sessionId)) this.forget(process);
    });
  }

  private forget(process: ManagedProcess): void {
    process.forgotten = true;
    clearTimeout(process.timeoutTimer);
    clearTimeout(process.retainTimer);
    process.output.release();
    const table = this.tables.get(process.sessionId);
    if (table?.byPid.get(process.pid) === process) table.byPid.delete(process.pid);
    if (table && table.byPid.size === 0 && table.starting === 0) {
      this.tables.delete(process.sessionId);
    }
  }

  /** A loss reported by the sandbox marks the session lost, as an exec does. */
  private async noteLoss(sessionId: string, error: unknown): Promise<void> {
    if (error instanceof SandpoolError && error.code === 'session_lost') {
      await this.options.sessions.markLost(sessionId, 'its container is gone');
    }
  }

  private isActive(sessionId: string): boolean {
    try {
      this.options.sessions.get(sessionId);
      return true;
    } catch {
      return false;
    }
  }

  private makeRoom(table: SessionTable): void {
    const { maxPerSession } = this.options.limits;
    if (table.byPid.size + table.starting < maxPerSession) return;
    const exited = [...table.byPid.values()]
      .filter((p) => p.endedAt !== undefined)
      .sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0));
    const oldest = exited[0];
    if (oldest === undefined) {
      throw new SandpoolError(
        'invalid_request',
        `This session runs its limit of ${maxPerSession} processes (SANDPOOL_MAX_PROCESSES); kill one with DELETE /v1/sessions/{id}/processes/{pid} first.`,
      );
    }
    this.forget(oldest);
  }

  private tableOf(sessionId: string): SessionTable {
    let table = this.tables.get(sessionId);
    if (!table) {
      table = { byPid: new Map(), starting: 0 };
      this.tables.set(sessionId, table);
    }
    return table;
  }

  private find(sessionId: string, selector: string): ManagedProcess {
    try {
      this.options.sessions.get(sessionId);
    } catch (error) {
      const table = this.tables.get(sessionId);
      if (table) for (const process of [...table.byPid.values()]) this.forget(process);
      throw error;
    }
    const table = this.tables.get(sessionId);
    const found =
      table &&
      (/^\d+$/.test(selector)
        ? table.byPid.get(Number(selector))
        : (this.findRunningByTag(table, selector) ?? this.findLatestByTag(table, selector)));
    if (!found) {
      throw new SandpoolError(
        'process_not_found',
        `No process ${selector} in session ${sessionId}; list them with GET /v1/sessions/${sessionId}/processes.`,
      );
    }
    return found;
  }

  private findRunning(sessionId: string, selector: string): ManagedProcess {
    const process = this.find(sessionId, selector);
    if (process.endedAt !== undefined) {
      throw new SandpoolError(
        'invalid_request',
        `Process ${process.pid} has exited (code ${process.exitCode ?? -1}); start a new one.`,
      );
    }
    return process;
  }

  private findRunningByTag(table: SessionTable, tag: string): ManagedProcess | undefined {
    for (const process of table.byPid.values()) {
      if (process.tag === tag && process.endedAt === undefined) return process;
    }
    return undefined;
  }

  private findLatestByTag(table: SessionTable, tag: string): ManagedProcess | undefined {
    let latest: ManagedProcess | undefined;
    for (const process of table.byPid.values()) {
      if (process.tag === tag && (!latest || process.startedAt >= latest.startedAt))
        latest = process;
    }
    return latest;
  }
}

function processesOf(session: Session): SandboxProcesses {
  const processes = session.sandbox.processes;
  if (processes === undefined) {
    throw new SandpoolError(
      'invalid_request',
      'This session’s sandbox runs without the in-sandbox agent (an image without it, or a session re-adopted after a worker restart), so it cannot keep background processes; create a new session.',
    );
  }
  return processes;
}

function view(process: ManagedProcess): ProcessView {
  return {
    pid: process.pid,
    tag: process.tag ?? null,
    command: process.command,
    argv: process.argv,
    cwd: process.cwd,
    pty: process.pty,
    running: process.endedAt === undefined,
    exit_code: process.exitCode ?? null,
    timed_out: process.timedOut,
    started_at: iso(process.startedAt),
    ended_at: process.endedAt === undefined ? null : iso(process.endedAt),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

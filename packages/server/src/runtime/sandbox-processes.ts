/**
 * The runtime's side of background processes, terminals and directory watches: what a sandbox
 * offers when it can run processes beyond one request (the agent-driven Docker sandbox does; the
 * `docker exec` path does not). The process service (processes/) builds the public API on it.
 */

export interface TerminalSize {
  cols: number;
  rows: number;
}

export interface ProcessSpec {
  /** The program and its arguments; a shell command is `['/bin/sh', '-c', command]`. */
  argv: string[];
  /** Absolute working directory inside the box. */
  cwd: string;
  env: Record<string, string>;
  /** Keep stdin open for `writeStdin` (pipes); a terminal always takes input. */
  stdin: boolean;
  /** Run on a pseudo-terminal of this size (stdout and stderr then arrive as one stream). */
  pty?: TerminalSize;
}

export type OutputStream = 'stdout' | 'stderr';

/** Receivers of a background process's life; called in order, never after `onExit` or `onLost`. */
export interface ProcessEvents {
  /** Called synchronously for each chunk; the chunk is acknowledged once this returns. */
  onOutput(stream: OutputStream, chunk: Buffer): void;
  /** `exitCode` follows the shell: 128 + n for a death by signal n. */
  onExit(exitCode: number, signal: number | undefined): void;
  /** The sandbox is gone (`session_lost`), or its agent broke the protocol. */
  onLost(error: Error): void;
}

/** Signals a client may send to a process group. */
export const PROCESS_SIGNALS = [
  'SIGHUP',
  'SIGINT',
  'SIGQUIT',
  'SIGKILL',
  'SIGUSR1',
  'SIGUSR2',
  'SIGTERM',
  'SIGCONT',
  'SIGSTOP',
  'SIGTSTP',
  'SIGWINCH',
] as const;
export type ProcessSignal = (typeof PROCESS_SIGNALS)[number];

/** A started process. Every method is fire-and-forget and safe after the process ended. */
export interface BackgroundProcess {
  /** The process id inside the sandbox (also its process group id). */
  readonly pid: number;
  writeStdin(data: Uint8Array): void;
  /** Closes stdin (a pipe), or sends end-of-input (^D) to a terminal. */
  endStdin(): void;
  /** Sends a signal to the process's whole group. */
  signal(name: ProcessSignal): void;
  resize(size: TerminalSize): void;
  /** Kills the whole group; `onExit` follows (with 137 if the sandbox never reports it). */
  kill(): void;
}

export type WatchEventType = 'create' | 'write' | 'remove' | 'rename' | 'chmod' | 'overflow';

export interface WatchEvent {
  type: WatchEventType;
  /** Path relative to the watched directory. */
  name: string;
  isDir: boolean;
}

export interface WatchEvents {
  /** More events are read from the sandbox once the returned promise settles (backpressure). */
  onEvents(events: WatchEvent[]): Promise<void> | void;
  /** The watched directory went away (`removed`, `moved`) or the watch failed. */
  onEnd(reason: string): void;
  onLost(error: Error): void;
}

export interface DirectoryWatch {
  /** Stops watching; safe to call twice and after the watch ended. */
  stop(): void;
}

export interface SandboxProcesses {
  /** Resolves once the process runs; rejects when it cannot start. */
  start(spec: ProcessSpec, events: ProcessEvents): Promise<BackgroundProcess>;
  /** Resolves once the directory is watched; rejects when it cannot be. */
  watch(path: string, recursive: boolean, events: WatchEvents): Promise<DirectoryWatch>;
}

import type { Readable, Writable } from 'node:stream';
import type { SandboxProcesses } from './sandbox-processes.js';
import type { SandboxTunnels } from './sandbox-tunnels.js';

/**
 * The project-owned interface for "a box that runs processes". The pool, the sessions and the
 * routes depend on this file only; the Docker adapter implements it, and a gVisor or microVM
 * adapter could too.
 */

/** Labels that mark what sandpool created, so leaks can be found and removed. */
export type SandboxLabels = Record<string, string>;

export interface SandboxSpec {
  /** Labels the runtime stores with the box (worker id, role, session id). */
  labels: SandboxLabels;
  /** Environment variables the box starts with (never secrets of the host). */
  env?: Record<string, string>;
  /**
   * An isolated network to join instead of the runtime's default (sessions with an egress
   * policy): `address` is the box's own, `dns` the only resolver it is given.
   */
  network?: { name: string; address: string; dns: string[] };
}

export interface ExecRequest {
  /** The program and its arguments; a shell command is `['/bin/sh', '-c', command]`. */
  argv: string[];
  /** Absolute working directory inside the box. */
  cwd: string;
  env?: Record<string, string>;
  /** Bytes written to the process's stdin, then closed. Stdin is empty when omitted. */
  stdin?: Uint8Array;
  /** After this many milliseconds the whole process group is killed. */
  timeoutMs: number;
  /** Aborting kills the whole process group (a client went away). */
  signal?: AbortSignal;
}

/** Receivers of a command's output; a returned promise holds the output back until it settles. */
export interface ExecSinks {
  onStdout(chunk: Buffer): void | Promise<void>;
  onStderr(chunk: Buffer): void | Promise<void>;
}

export interface ExecOutcome {
  exitCode: number;
  timedOut: boolean;
  durationMs: number;
}

export type FileType = 'file' | 'directory' | 'symlink' | 'other';

export interface FileEntry {
  name: string;
  type: FileType;
  size: number;
  /** Permission bits, as an octal string such as "644". */
  mode: string;
  /** Last modification, ISO 8601. */
  mtime: string;
}

export interface FileStat {
  type: FileType;
  size: number;
}

/** One running box. Paths given here are absolute and already checked by the caller. */
export interface Sandbox {
  readonly id: string;
  readonly labels: SandboxLabels;
  exec(request: ExecRequest, sinks: ExecSinks): Promise<ExecOutcome>;
  /** Writes the stream to `path` as the sandbox user, creating parents; resolves to bytes written. */
  writeFile(path: string, content: Readable): Promise<number>;
  /** `undefined` when nothing is at `path`. */
  statFile(path: string): Promise<FileStat | undefined>;
  /** Streams the file's bytes into `destination`. */
  readFile(path: string, destination: Writable): Promise<void>;
  listFiles(path: string): Promise<FileEntry[]>;
  /** Removes a file or a directory tree. */
  removeFile(path: string): Promise<void>;
  /** Background processes, terminals and watches, where the box can run them. */
  readonly processes?: SandboxProcesses;
  /** TCP connections to ports inside the box (preview URLs), where the box can make them. */
  readonly tunnels?: SandboxTunnels;
  /** True while the box runs. */
  isAlive(): Promise<boolean>;
  /** Kills and removes the box; safe to call twice. */
  destroy(): Promise<void>;
}

export interface SandboxSummary {
  id: string;
  labels: SandboxLabels;
  running: boolean;
}

export interface SandboxRuntime {
  /** Creates and starts a box, ready for exec. */
  create(spec: SandboxSpec): Promise<Sandbox>;
  /** Every box carrying all of these labels, running or not. */
  list(labels: SandboxLabels): Promise<SandboxSummary[]>;
  /**
   * A handle on a running box this runtime created earlier, so a restarted worker can re-adopt
   * its sessions. Optional: without it, leftovers are removed instead.
   */
  attach?(summary: SandboxSummary): Sandbox;
  /**
   * Stops a box by id at once (its processes are killed; it can no longer run anything), so the
   * slower removal can follow in the background. Optional; no error when it is already stopped.
   */
  stop?(id: string): Promise<void>;
  /** Removes a box by id, whatever its state; no error when it is already gone. */
  remove(id: string): Promise<void>;
  /** Resolves when the engine answers; rejects with `runtime_unavailable` otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A session as the server describes it (`GET /v1/sessions/{id}`), in the SDK's camelCase. */
export interface SessionInfo {
  /** The session's id: unguessable, and all it takes to reconnect with `Sandbox.connect`. */
  sessionId: string;
  /** The worker that holds the session's container. */
  workerId: string;
  /** The template the session's sandbox was made from (`base` unless asked otherwise). */
  template: string;
  /** When the session was created. */
  createdAt: Date;
  /** When the server ends the session unless `keepAlive` moves it. */
  expiresAt: Date;
  /** The caller's labels given at creation. */
  metadata: Record<string, string>;
  /**
   * The session's own secret for its in-sandbox APIs (preview URLs, E2B's envd routes); empty
   * from servers that predate it.
   */
  accessToken: string;
}

/** The outcome of one command. A non-zero exit is a result, not an error. */
export interface ExecResult {
  /** Everything the command wrote to stdout (UTF-8), up to the server's cap. */
  stdout: string;
  /** Everything the command wrote to stderr (UTF-8), up to the server's cap. */
  stderr: string;
  /** The command's exit status; 137 when it was killed (for example by the memory limit). */
  exitCode: number;
  /** Wall time the command ran inside the sandbox, in milliseconds. */
  durationMs: number;
  /** Whether the command hit its timeout and its whole process group was killed. */
  timedOut: boolean;
  /** Whether stdout or stderr went past the server's cap (default 1 MiB each) and was cut. */
  truncated: boolean;
}

/** A piece of the command's stdout, as it arrived. */
export interface ExecStdoutEvent {
  type: 'stdout';
  /** The text (UTF-8). */
  data: string;
}

/** A piece of the command's stderr, as it arrived. */
export interface ExecStderrEvent {
  type: 'stderr';
  /** The text (UTF-8). */
  data: string;
}

/** The last event of a stream: the command ended. */
export interface ExecExitEvent {
  type: 'exit';
  /** The command's exit status. */
  exitCode: number;
  /** Wall time the command ran inside the sandbox, in milliseconds. */
  durationMs: number;
  /** Whether the command hit its timeout. */
  timedOut: boolean;
  /** Whether output went past the server's cap. */
  truncated: boolean;
}

/**
 * One event of `Sandbox.execStream`. A failure after the stream began (the server's
 * `{"type":"error"}` line) is thrown by the iterator as a `SandboxError`, not yielded.
 */
export type ExecEvent = ExecStdoutEvent | ExecStderrEvent | ExecExitEvent;

/** What `writeFile` and `uploadFile` report. */
export interface WriteFileResult {
  /** The absolute path the file got inside the sandbox. */
  path: string;
  /** Bytes written. */
  size: number;
}

/** What `downloadFile` reports. */
export interface DownloadFileResult {
  /** The local path written. */
  path: string;
  /** Bytes written. */
  size: number;
}

/** Kind of a directory entry. */
export type FileType = 'file' | 'directory' | 'symlink' | 'other';

/** One entry of `listFiles`. */
export interface FileEntry {
  /** The entry's name within its directory. */
  name: string;
  /** What the entry is. */
  type: FileType;
  /** Size in bytes. */
  size: number;
  /** Permission bits, for example `0o644`. */
  mode: number;
  /** Last modification time. */
  mtime: Date;
}

/**
 * `GET /health`, as the server sent it (snake_case, since a coordinator adds fields a worker has
 * not, and the SDK should not drop them).
 */
/** A template the server serves (`GET /v1/templates`), with its warm pool. */
/**
 * A session's egress allow-list: host patterns (`pypi.org`, `*.pythonhosted.org`,
 * `api.github.com:443`; no port means 80 and 443) the sandbox may reach through the worker's
 * egress proxy. `denyOut` wins over `allowOut`. Everything else stays unreachable.
 */
export interface NetworkPolicy {
  allowOut: string[];
  denyOut?: string[];
}

export interface TemplateInfo {
  /** Its name, as `Sandbox.create({ template })` takes it. */
  name: string;
  /** Warm sandboxes ready now (summed over workers on a coordinator). */
  poolSize: number;
  /** Sessions open on it. */
  activeSessions: number;
  /** The image its sandboxes run (a worker only). */
  image?: string;
  /** `ready`, or `image_missing` when the operator has not built it yet (a worker only). */
  status?: string;
  /** The workers that serve it (a coordinator only). */
  workers?: string[];
}

export interface HealthStatus {
  /** `healthy`, or `unhealthy` with a `reason`; a server may also say `degraded`. */
  status: string;
  /** Why the server is not healthy. */
  reason?: string;
  /** The worker's id (a worker only). */
  worker_id?: string;
  /** Warm containers ready. */
  pool_size?: number;
  /** Sessions open. */
  active_sessions?: number;
  /** Workers and their state (a coordinator only). */
  workers?: {
    worker_id: string;
    url: string;
    healthy: boolean;
    pool_size: number;
    active_sessions: number;
    last_heartbeat: string;
  }[];
  [field: string]: unknown;
}

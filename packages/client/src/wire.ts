import { errorFromCode, isApiErrorCode, SandboxError } from './errors.js';
import type {
  ExecEvent,
  ExecExitEvent,
  ExecResult,
  FileEntry,
  FileType,
  NetworkPolicy,
  SessionInfo,
  TemplateInfo,
  WriteFileResult,
} from './types.js';

/**
 * Reads the server's snake_case JSON into the SDK's camelCase types, checking what the SDK relies
 * on so that a wrong answer fails here, with a clear message, rather than later as `undefined`.
 */

type Json = Record<string, unknown>;

function invalid(what: string, value: unknown): SandboxError {
  const shown = JSON.stringify(value) ?? String(value);
  return new SandboxError(
    'invalid_response',
    `the server's ${what} is not what the sandpool API defines: ${shown.slice(0, 200)}`,
  );
}

function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(what, value);
  }
  return value as Json;
}

function string(o: Json, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw invalid(what, o);
  return v;
}

function number(o: Json, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(what, o);
  return v;
}

function boolean(o: Json, key: string): boolean {
  return o[key] === true;
}

function date(o: Json, key: string, what: string): Date {
  const v = o[key];
  const d = typeof v === 'string' || typeof v === 'number' ? new Date(v) : new Date(NaN);
  if (Number.isNaN(d.getTime())) throw invalid(what, o);
  return d;
}

function stringRecord(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

/** A session object (`POST /v1/sessions`, `GET /v1/sessions/{id}`, keep-alive). */
export function parseSession(value: unknown): SessionInfo {
  const o = object(value, 'session');
  return {
    sessionId: string(o, 'session_id', 'session'),
    workerId: typeof o.worker_id === 'string' ? o.worker_id : '',
    // Servers that predate templates serve only `base`.
    template: typeof o.template === 'string' ? o.template : 'base',
    createdAt: date(o, 'created_at', 'session'),
    expiresAt: date(o, 'expires_at', 'session'),
    metadata: stringRecord(o.metadata),
    accessToken: typeof o.access_token === 'string' ? o.access_token : '',
  };
}

/** `GET /v1/sessions`. */
export function parseSessionList(value: unknown): SessionInfo[] {
  const sessions = object(value, 'session list').sessions;
  if (!Array.isArray(sessions)) throw invalid('session list', value);
  return sessions.map(parseSession);
}

/** `GET /v1/templates`. */
export function parseTemplateList(value: unknown): TemplateInfo[] {
  const templates = object(value, 'template list').templates;
  if (!Array.isArray(templates)) throw invalid('template list', value);
  return templates.map((item) => {
    const o = object(item, 'template');
    return {
      name: string(o, 'name', 'template'),
      poolSize: number(o, 'pool_size', 'template'),
      activeSessions: typeof o.active_sessions === 'number' ? o.active_sessions : 0,
      ...(typeof o.image === 'string' ? { image: o.image } : {}),
      ...(typeof o.status === 'string' ? { status: o.status } : {}),
      ...(Array.isArray(o.workers)
        ? { workers: o.workers.filter((w): w is string => typeof w === 'string') }
        : {}),
    };
  });
}

/** The JSON answer of exec. */
export function parseExecResult(value: unknown): ExecResult {
  const o = object(value, 'exec result');
  return {
    stdout: typeof o.stdout === 'string' ? o.stdout : '',
    stderr: typeof o.stderr === 'string' ? o.stderr : '',
    exitCode: number(o, 'exit_code', 'exec result'),
    durationMs: typeof o.duration_ms === 'number' ? o.duration_ms : 0,
    timedOut: boolean(o, 'timed_out'),
    truncated: boolean(o, 'truncated'),
  };
}

/**
 * One NDJSON line of a streamed exec. An `error` line becomes the typed error, thrown; a line of
 * a type this SDK does not know yet is skipped (`undefined`) so that newer servers stay usable.
 */
export function parseExecEvent(value: unknown): ExecEvent | undefined {
  const o = object(value, 'exec event');
  switch (o.type) {
    case 'stdout':
    case 'stderr':
      return { type: o.type, data: string(o, 'data', 'exec event') };
    case 'exit':
      return {
        type: 'exit',
        exitCode: number(o, 'exit_code', 'exec event'),
        durationMs: typeof o.duration_ms === 'number' ? o.duration_ms : 0,
        timedOut: boolean(o, 'timed_out'),
        truncated: boolean(o, 'truncated'),
      };
    case 'error': {
      const error = object(o.error, 'exec error event');
      const message = typeof error.message === 'string' ? error.message : 'exec failed';
      throw isApiErrorCode(error.code)
        ? errorFromCode(error.code, message)
        : new SandboxError('http_error', `${String(error.code)}: ${message}`);
    }
    default:
      return undefined;
  }
}

/** The events a streamed exec would have produced, made from a plain JSON result. */
export function eventsFromResult(result: ExecResult): ExecEvent[] {
  const events: ExecEvent[] = [];
  if (result.stdout !== '') events.push({ type: 'stdout', data: result.stdout });
  if (result.stderr !== '') events.push({ type: 'stderr', data: result.stderr });
  const exit: ExecExitEvent = {
    type: 'exit',
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    timedOut: result.timedOut,
    truncated: result.truncated,
  };
  events.push(exit);
  return events;
}

/** `PUT /v1/sessions/{id}/files`. */
export function parseWriteResult(value: unknown): WriteFileResult {
  const o = object(value, 'file write result');
  return {
    path: string(o, 'path', 'file write result'),
    size: number(o, 'size', 'file write result'),
  };
}

const FILE_TYPES: readonly FileType[] = ['file', 'directory', 'symlink', 'other'];

function fileType(value: unknown): FileType {
  if (value === 'dir') return 'directory';
  if (value === 'link') return 'symlink';
  return FILE_TYPES.find((t) => t === value) ?? 'other';
}

function fileMode(value: unknown): number {
  if (typeof value === 'number') return value;
  // Some servers send the octal text ("0644" or "644").
  if (typeof value === 'string' && /^[0-7]+$/.test(value)) return parseInt(value, 8);
  return 0;
}

/** `GET /v1/sessions/{id}/files/list`. */
export function parseFileList(value: unknown): FileEntry[] {
  const entries = object(value, 'file list').entries;
  if (!Array.isArray(entries)) throw invalid('file list', value);
  return entries.map((entry) => {
    const o = object(entry, 'file entry');
    const mtime = o.mtime;
    return {
      name: string(o, 'name', 'file entry'),
      type: fileType(o.type),
      size: typeof o.size === 'number' ? o.size : 0,
      mode: fileMode(o.mode),
      mtime: typeof mtime === 'string' || typeof mtime === 'number' ? new Date(mtime) : new Date(0),
    };
  });
}

/** `{"ttl_seconds", "env", "metadata"}`, leaving out what the caller did not give. */
export function sessionCreateBody(options: {
  template?: string;
  ttlSeconds?: number;
  env?: Record<string, string>;
  metadata?: Record<string, string>;
  network?: NetworkPolicy;
}): Json {
  const body: Json = {};
  if (options.template !== undefined) body.template = options.template;
  if (options.ttlSeconds !== undefined) body.ttl_seconds = options.ttlSeconds;
  if (options.env !== undefined) body.env = options.env;
  if (options.metadata !== undefined) body.metadata = options.metadata;
  if (options.network !== undefined) {
    body.network = {
      allow_out: [...options.network.allowOut],
      ...(options.network.denyOut !== undefined ? { deny_out: [...options.network.denyOut] } : {}),
    };
  }
  return body;
}

/** The exec request body; a string runs through `/bin/sh -c`, an array runs as argv. */
export function execBody(
  command: string | readonly string[],
  options: { cwd?: string; env?: Record<string, string>; stdin?: string; timeoutMs?: number },
): Json {
  const body: Json = typeof command === 'string' ? { command } : { argv: [...command] };
  if (options.cwd !== undefined) body.cwd = options.cwd;
  if (options.env !== undefined) body.env = options.env;
  if (options.stdin !== undefined) body.stdin = options.stdin;
  if (options.timeoutMs !== undefined) body.timeout_ms = options.timeoutMs;
  return body;
}

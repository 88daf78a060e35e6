import { errorFromCode, isApiErrorCode, SandboxError } from './errors.js';
import type { HttpTransport } from './http-transport.js';
import { readNdjson } from './ndjson.js';
import { responseBody } from './http-transport.js';

/**
 * The code interpreter of a session: cells run in a persistent context (a real IPython kernel,
 * or a bash) and come back with Jupyter's rich results. Shapes follow E2B's code interpreter
 * SDK (`Execution`, `Result`, `ExecutionError`, `Logs`), in camelCase.
 */

/** A context's language. */
export type CodeLanguage = 'python' | 'bash';

/**
 * One rich output of a cell: each Jupyter MIME type in its own field (images base64), anything
 * else in `extra`. `isMainResult` marks the value of the cell's last expression.
 */
export interface Result {
  text?: string;
  html?: string;
  markdown?: string;
  svg?: string;
  /** Base64 PNG. */
  png?: string;
  /** Base64 JPEG. */
  jpeg?: string;
  /** Base64 PDF. */
  pdf?: string;
  latex?: string;
  json?: unknown;
  javascript?: string;
  /** The value of the cell's last expression (not a `display()` call). */
  isMainResult: boolean;
  /** Other MIME types, by type. */
  extra?: Record<string, unknown>;
  /** A format was over the size cap: text is cut, others left out. */
  truncated?: boolean;
}

/** The error a cell ended with. */
export interface ExecutionError {
  /** The exception's class: `ZeroDivisionError`, `TimeoutError`, `KernelDied`, `ExitError`. */
  name: string;
  value: string;
  /** Plain text (no ANSI colours). */
  traceback: string;
  /** The cell ran past `timeoutMs` and was interrupted. */
  timedOut: boolean;
  /** The context was restarted, so its variables are gone (a dead or unstoppable kernel). */
  contextRestarted: boolean;
}

/** A cell's printed output, in the chunks it came in. */
export interface Logs {
  stdout: string[];
  stderr: string[];
}

/** What a cell produced. */
export interface Execution {
  results: Result[];
  logs: Logs;
  error: ExecutionError | undefined;
  /** The kernel's cell counter (`In [n]`); `null` when the kernel died before counting. */
  executionCount: number | null;
  durationMs: number;
  /** The context the cell ran in. */
  contextId: string;
  /** Output or a result went over its cap. */
  truncated: boolean;
  /** The main result's text, as E2B's `execution.text`. */
  text: string | undefined;
}

/** A code context: its own kernel (or shell) with its own variables. */
export interface CodeContext {
  id: string;
  language: CodeLanguage;
  cwd: string;
}

/** Options of `Sandbox.runCode`. */
export interface RunCodeOptions {
  /** Language of the default context to use (default `python`); ignored with `context`. */
  language?: CodeLanguage;
  /** The context to run in (from `createCodeContext`), or its id. */
  context?: CodeContext | string;
  /** Called with each piece of stdout as the cell prints it (the call then streams). */
  onStdout?: (data: string) => void;
  /** Called with each piece of stderr as it comes. */
  onStderr?: (data: string) => void;
  /** Called with each result (a figure, a `display()`, the main result) as it comes. */
  onResult?: (result: Result) => void;
  /** Called with the cell's error, when it has one. */
  onError?: (error: ExecutionError) => void;
  /** The cell's timeout; past it the kernel is interrupted (default: the server's, 60 s). */
  timeoutMs?: number;
  /** Environment variables for this cell only. */
  env?: Record<string, string>;
  signal?: AbortSignal;
}

/** Options of `Sandbox.createCodeContext`. */
export interface CreateCodeContextOptions {
  /** Default `python`. */
  language?: CodeLanguage;
  /** Working directory; relative paths are under the sandbox's home. */
  cwd?: string;
  signal?: AbortSignal;
}

const NDJSON = 'application/x-ndjson';
type Json = Record<string, unknown>;

/** `POST /v1/sessions/{id}/code`, as JSON or (with a callback) as NDJSON events. */
export async function runCode(
  transport: HttpTransport,
  sessionPath: string,
  code: string,
  options: RunCodeOptions = {},
): Promise<Execution> {
  const path = `${sessionPath}/code`;
  const json = {
    code,
    ...(options.language === undefined ? {} : { language: options.language }),
    ...(options.context === undefined
      ? {}
      : { context_id: typeof options.context === 'string' ? options.context : options.context.id }),
    ...(options.timeoutMs === undefined ? {} : { timeout_ms: options.timeoutMs }),
    ...(options.env === undefined ? {} : { env: options.env }),
  };
  const streaming =
    options.onStdout !== undefined ||
    options.onStderr !== undefined ||
    options.onResult !== undefined ||
    options.onError !== undefined;
  if (!streaming) {
    const answer = object(
      await transport.requestJson({
        method: 'POST',
        path,
        json,
        timeoutMs: null,
        signal: options.signal,
      }),
      'code answer',
    );
    return executionFrom(answer);
  }
  const response = await transport.request({
    method: 'POST',
    path,
    json,
    accept: NDJSON,
    timeoutMs: null,
    signal: options.signal,
  });
  const body = responseBody(response);
  if (body === null) throw new SandboxError('invalid_response', `POST ${path}: no body`);
  const execution = emptyExecution();
  const url = transport.urlFor(path);
  try {
    for await (const line of readNdjson(body)) {
      const event = object(line, 'code event');
      switch (event.type) {
        case 'stdout':
        case 'stderr': {
          const data = typeof event.data === 'string' ? event.data : '';
          execution.logs[event.type].push(data);
          (event.type === 'stdout' ? options.onStdout : options.onStderr)?.(data);
          break;
        }
        case 'result': {
          const result = resultFrom(event);
          execution.results.push(result);
          if (result.isMainResult) execution.text = result.text;
          options.onResult?.(result);
          break;
        }
        case 'error': {
          if (isRecord(event.error)) {
            // A failure of the call itself (not of the cell), after the answer began.
            const code = event.error.code;
            const message =
              typeof event.error.message === 'string'
                ? event.error.message
                : 'the code call failed';
            throw isApiErrorCode(code)
              ? errorFromCode(code, message)
              : new SandboxError('invalid_response', message);
          }
          execution.error = errorFrom(event);
          options.onError?.(execution.error);
          break;
        }
        case 'end':
          execution.executionCount = countFrom(event.execution_count);
          execution.durationMs = typeof event.duration_ms === 'number' ? event.duration_ms : 0;
          execution.contextId = typeof event.context_id === 'string' ? event.context_id : '';
          execution.truncated = event.truncated === true;
          return execution;
        default:
          break; // a newer server's event: skipped
      }
    }
  } catch (error) {
    if (error instanceof SandboxError) throw error;
    throw transport.networkError(error, url, options.signal, null);
  }
  throw new SandboxError('invalid_response', `POST ${url}: the stream ended before its end event`);
}

/** `POST /v1/sessions/{id}/contexts`. */
export async function createCodeContext(
  transport: HttpTransport,
  sessionPath: string,
  options: CreateCodeContextOptions = {},
): Promise<CodeContext> {
  const answer = await transport.requestJson({
    method: 'POST',
    path: `${sessionPath}/contexts`,
    json: {
      ...(options.language === undefined ? {} : { language: options.language }),
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    },
    signal: options.signal,
  });
  return contextFrom(answer);
}

/** `GET /v1/sessions/{id}/contexts`. */
export async function listCodeContexts(
  transport: HttpTransport,
  sessionPath: string,
  signal?: AbortSignal,
): Promise<CodeContext[]> {
  const answer = object(
    await transport.requestJson({ method: 'GET', path: `${sessionPath}/contexts`, signal }),
    'context list',
  );
  if (!Array.isArray(answer.contexts)) throw invalid('context list', answer);
  return answer.contexts.map(contextFrom);
}

/** `POST /v1/sessions/{id}/contexts/{cid}/restart`. */
export async function restartCodeContext(
  transport: HttpTransport,
  sessionPath: string,
  context: CodeContext | string,
  signal?: AbortSignal,
): Promise<CodeContext> {
  const id = typeof context === 'string' ? context : context.id;
  return contextFrom(
    await transport.requestJson({
      method: 'POST',
      path: `${sessionPath}/contexts/${encodeURIComponent(id)}/restart`,
      signal,
    }),
  );
}

/** `DELETE /v1/sessions/{id}/contexts/{cid}`. */
export async function removeCodeContext(
  transport: HttpTransport,
  sessionPath: string,
  context: CodeContext | string,
  signal?: AbortSignal,
): Promise<void> {
  const id = typeof context === 'string' ? context : context.id;
  await transport.requestJson({
    method: 'DELETE',
    path: `${sessionPath}/contexts/${encodeURIComponent(id)}`,
    signal,
  });
}

/** The server's JSON answer of a cell as an {@link Execution}. */
export function executionFrom(answer: Json): Execution {
  if (!Array.isArray(answer.results) || typeof answer.stdout !== 'string') {
    throw invalid('code answer', answer);
  }
  const results = answer.results.map((r) => resultFrom(object(r, 'result')));
  return {
    results,
    logs: {
      stdout: answer.stdout === '' ? [] : [answer.stdout],
      stderr: typeof answer.stderr === 'string' && answer.stderr !== '' ? [answer.stderr] : [],
    },
    error: isRecord(answer.error) ? errorFrom(answer.error) : undefined,
    executionCount: countFrom(answer.execution_count),
    durationMs: typeof answer.duration_ms === 'number' ? answer.duration_ms : 0,
    contextId: typeof answer.context_id === 'string' ? answer.context_id : '',
    truncated: answer.truncated === true,
    text: results.find((r) => r.isMainResult)?.text,
  };
}

function emptyExecution(): Execution {
  return {
    results: [],
    logs: { stdout: [], stderr: [] },
    error: undefined,
    executionCount: null,
    durationMs: 0,
    contextId: '',
    truncated: false,
    text: undefined,
  };
}

const STRING_FORMATS = [
  'text',
  'html',
  'markdown',
  'svg',
  'png',
  'jpeg',
  'pdf',
  'latex',
  'javascript',
] as const;

function resultFrom(value: Json): Result {
  const result: Result = { isMainResult: value.is_main_result === true };
  for (const format of STRING_FORMATS) {
    const v = value[format];
    if (typeof v === 'string') result[format] = v;
  }
  if (value.json !== undefined) result.json = value.json;
  if (isRecord(value.extra)) result.extra = value.extra;
  if (value.truncated === true) result.truncated = true;
  return result;
}

function errorFrom(value: Json): ExecutionError {
  return {
    name: typeof value.name === 'string' ? value.name : 'Error',
    value: typeof value.value === 'string' ? value.value : '',
    traceback: typeof value.traceback === 'string' ? value.traceback : '',
    timedOut: value.timed_out === true,
    contextRestarted: value.context_restarted === true,
  };
}

function contextFrom(value: unknown): CodeContext {
  const o = object(value, 'context');
  if (
    typeof o.context_id !== 'string' ||
    (o.language !== 'python' && o.language !== 'bash') ||
    typeof o.cwd !== 'string'
  ) {
    throw invalid('context', o);
  }
  return { id: o.context_id, language: o.language, cwd: o.cwd };
}

function countFrom(value: unknown): number | null {
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : null;
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: unknown, what: string): Json {
  if (!isRecord(value)) throw invalid(what, value);
  return value;
}

function invalid(what: string, value: unknown): SandboxError {
  const shown = JSON.stringify(value) ?? String(value);
  return new SandboxError(
    'invalid_response',
    `the server's ${what} is not what the sandpool API defines: ${shown.slice(0, 200)}`,
  );
}

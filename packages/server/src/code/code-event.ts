/**
 * What a code cell produces, in the wire shape of the public API (snake_case, close to E2B's
 * `Result`, `ExecutionError` and `Execution`), and the checks that turn the kernel bridge's
 * untrusted lines into it.
 */

/** One rich output of a cell: each Jupyter MIME type in its own field, the rest in `extra`. */
export interface CodeResult {
  text?: string;
  html?: string;
  markdown?: string;
  svg?: string;
  /** Base64. */
  png?: string;
  /** Base64. */
  jpeg?: string;
  /** Base64. */
  pdf?: string;
  latex?: string;
  json?: unknown;
  javascript?: string;
  /** The value of the cell's last expression (Jupyter's `execute_result`), not a `display()`. */
  is_main_result: boolean;
  extra?: Record<string, unknown>;
  /** Some formats were over the size cap: text ones are cut, the others left out. */
  truncated?: boolean;
}

export interface CodeError {
  name: string;
  value: string;
  traceback: string;
  /** The cell ran past its timeout and was interrupted. */
  timed_out?: boolean;
  /** The context was restarted (its variables are gone): the kernel died or ignored an interrupt. */
  context_restarted?: boolean;
}

export interface CodeEnd {
  execution_count: number | null;
  duration_ms: number;
  context_id: string;
  language: CodeLanguage;
  truncated: boolean;
}

export type CodeLanguage = 'python' | 'bash';

export type CodeEvent =
  | { type: 'stdout' | 'stderr'; data: string }
  | ({ type: 'result' } & CodeResult)
  | ({ type: 'error' } & CodeError)
  | ({ type: 'end' } & CodeEnd);

/** The JSON answer of a cell. */
export interface CodeExecution {
  results: CodeResult[];
  stdout: string;
  stderr: string;
  error?: CodeError;
  execution_count: number | null;
  duration_ms: number;
  context_id: string;
  language: CodeLanguage;
  /** stdout, stderr or a result was over its cap. */
  truncated: boolean;
}

export interface CodeContextView {
  context_id: string;
  language: CodeLanguage;
  cwd: string;
}

/** Result fields that hold text (cut when too big); the others are left out whole. */
const TEXT_FORMATS = ['text', 'html', 'markdown', 'svg', 'latex', 'javascript'] as const;
const BASE64_FORMATS = ['png', 'jpeg', 'pdf'] as const;
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;
const CONTEXT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A bridge line the worker understands, or `undefined` for anything else (dropped). */
export type BridgeLine =
  | { kind: 'event'; event: Exclude<CodeEvent, { type: 'end' }> }
  | {
      kind: 'end';
      executionCount: number | null;
      contextId: string;
      language: CodeLanguage;
      contextRestarted: boolean;
      truncated: boolean;
    }
  | { kind: 'ok'; body: Record<string, unknown> }
  | { kind: 'failure'; code: string; message: string };

/**
 * Checks one parsed line. Strings are bounded by `maxFieldBytes` (text is cut, binary formats
 * over it are left out and the result marked truncated), so nothing the bridge says can grow the
 * answer past what the caps allow.
 */
export function readBridgeLine(value: unknown, maxFieldBytes: number): BridgeLine | undefined {
  if (!isRecord(value) || typeof value.type !== 'string') return undefined;
  switch (value.type) {
    case 'stdout':
    case 'stderr':
      return typeof value.data === 'string'
        ? { kind: 'event', event: { type: value.type, data: value.data } }
        : undefined;
    case 'result':
      return { kind: 'event', event: { type: 'result', ...readResult(value, maxFieldBytes) } };
    case 'error':
      return {
        kind: 'event',
        event: {
          type: 'error',
          name: clip(stringOr(value.name, 'Error'), 256),
          value: clip(stringOr(value.value, ''), maxFieldBytes),
          traceback: clip(stringOr(value.traceback, ''), maxFieldBytes),
          ...(value.timed_out === true ? { timed_out: true } : {}),
          ...(value.context_restarted === true ? { context_restarted: true } : {}),
        },
      };
    case 'end': {
      const count = value.execution_count;
      const contextId = value.context_id;
      if (typeof contextId !== 'string' || !CONTEXT_ID.test(contextId)) return undefined;
      return {
        kind: 'end',
        executionCount:
          typeof count === 'number' && Number.isSafeInteger(count) && count >= 0 ? count : null,
        contextId,
        language: value.language === 'bash' ? 'bash' : 'python',
        contextRestarted: value.context_restarted === true,
        truncated: value.truncated === true,
      };
    }
    case 'ok':
      return { kind: 'ok', body: value };
    case 'failure':
      return {
        kind: 'failure',
        code: clip(stringOr(value.code, 'internal'), 64),
        message: clip(stringOr(value.message, ''), 4096),
      };
    default:
      return undefined;
  }
}

/** A context as the bridge describes it, checked; `undefined` when it is not one. */
export function readContextView(value: unknown): CodeContextView | undefined {
  if (!isRecord(value)) return undefined;
  const { context_id: id, language, cwd } = value;
  if (typeof id !== 'string' || !CONTEXT_ID.test(id)) return undefined;
  if (language !== 'python' && language !== 'bash') return undefined;
  if (typeof cwd !== 'string' || cwd.length > 4096) return undefined;
  return { context_id: id, language, cwd };
}

function readResult(value: Record<string, unknown>, maxFieldBytes: number): CodeResult {
  const result: CodeResult = { is_main_result: value.is_main_result === true };
  let truncated = value.truncated === true;
  for (const field of TEXT_FORMATS) {
    const text = value[field];
    if (typeof text !== 'string') continue;
    if (Buffer.byteLength(text) > maxFieldBytes) truncated = true;
    result[field] = clip(text, maxFieldBytes);
  }
  for (const field of BASE64_FORMATS) {
    const data = value[field];
    if (typeof data !== 'string') continue;
    if (data.length > maxFieldBytes || !BASE64.test(data)) {
      truncated = true; // half an image is no image: left out
      continue;
    }
    result[field] = data;
  }
  if (value.json !== undefined) {
    if (JSON.stringify(value.json).length > maxFieldBytes) truncated = true;
    else result.json = value.json;
  }
  if (isRecord(value.extra)) {
    if (JSON.stringify(value.extra).length > maxFieldBytes) truncated = true;
    else result.extra = value.extra;
  }
  if (truncated) result.truncated = true;
  return result;
}

/** The first `maxBytes` of a string, never splitting a character. */
export function clip(text: string, maxBytes: number): string {
  if (text.length <= maxBytes / 3) return text; // fast path: at most 3 bytes a UTF-16 unit
  const bytes = Buffer.from(text);
  if (bytes.length <= maxBytes) return text;
  return bytes
    .subarray(0, maxBytes)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

import { SandpoolError } from '../errors/sandpool-error.js';
import { resolveTimeoutMs } from '../exec/timeout-limits.js';
import type { Session, SessionManager } from '../sessions/session-manager.js';
import { CellCapture } from './cell-capture.js';
import {
  readContextView,
  type BridgeLine,
  type CodeContextView,
  type CodeEvent,
  type CodeExecution,
  type CodeLanguage,
} from './code-event.js';
import { KernelBridgeClient, type BridgeCallOutcome } from './kernel-bridge-client.js';

export interface RunCodeInput {
  code: string;
  language?: CodeLanguage;
  contextId?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface CreateContextInput {
  language?: CodeLanguage;
  cwd?: string;
}

export interface CodeServiceOptions {
  sessions: SessionManager;
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** Cap of a cell's stdout, and of its stderr (the exec cap). */
  outputLimitBytes: number;
  /** Cap of one result's formats, and a quarter of the cap of all results of a cell. */
  resultLimitBytes: number;
  /** How long a kernel bridge started on demand may take (default 30 s). */
  startTimeoutMs?: number;
}

/** Time the bridge gets beyond a cell's timeout: the interrupt grace and a kernel restart. */
const CALL_MARGIN_MS = 60_000;
const CONTROL_TIMEOUT_MS = 90_000;
const MAX_RESULTS = 100;

/**
 * Code cells and contexts of sessions: Jupyter semantics from a real IPython kernel (or a
 * persistent bash) that the kernel bridge runs inside the sandbox. Caps as for exec: stdout and
 * stderr are cut at the exec cap, results at their own cap, and `truncated` says so.
 */
export class CodeService {
  private readonly bridge: KernelBridgeClient;

  constructor(private readonly options: CodeServiceOptions) {
    this.bridge = new KernelBridgeClient({
      maxFieldBytes: options.resultLimitBytes,
      // JSON escapes make a line longer than its text; beyond this it is not an honest answer.
      maxLineBytes: 2 * options.resultLimitBytes + 1024 * 1024,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
    });
  }

  /** The longest a cell may run (faces whose clients time cells out themselves ask for it). */
  get maxTimeoutMs(): number {
    return this.options.maxTimeoutMs;
  }

  /** Throws what `run` or `stream` would throw before starting, so a stream can fail with a status. */
  check(sessionId: string, input: RunCodeInput): void {
    this.options.sessions.get(sessionId);
    this.timeoutOf(input);
  }

  /** Runs one cell and answers with everything it produced (capped). */
  async run(sessionId: string, input: RunCodeInput, signal?: AbortSignal): Promise<CodeExecution> {
    const capture = this.capture();
    const end = await this.execute(sessionId, input, capture, () => undefined, signal);
    return capture.execution(end);
  }

  /**
   * Runs one cell and hands each event to `emit` as it happens (the kernel waits while `emit`
   * does); the last is `end`. Errors before the first event are thrown, so the caller can still
   * answer with a status.
   */
  async stream(
    sessionId: string,
    input: RunCodeInput,
    emit: (event: CodeEvent) => void | Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    const capture = this.capture();
    const end = await this.execute(sessionId, input, capture, emit, signal);
    await emit(capture.end(end));
  }

  async createContext(sessionId: string, input: CreateContextInput): Promise<CodeContextView> {
    const body = await this.control(sessionId, {
      op: 'create_context',
      language: input.language ?? 'python',
      cwd: input.cwd,
    });
    return contextOf(body);
  }

  async listContexts(sessionId: string): Promise<CodeContextView[]> {
    const body = await this.control(sessionId, { op: 'list_contexts' });
    const contexts = Array.isArray(body.contexts) ? body.contexts.slice(0, 64) : [];
    return contexts.map(readContextView).filter((c): c is CodeContextView => c !== undefined);
  }

  async restartContext(sessionId: string, contextId: string): Promise<CodeContextView> {
    return contextOf(
      await this.control(sessionId, { op: 'restart_context', context_id: contextId }),
    );
  }

  async deleteContext(sessionId: string, contextId: string): Promise<void> {
    await this.control(sessionId, { op: 'delete_context', context_id: contextId });
  }

  private capture(): CellCapture {
    return new CellCapture({
      outputBytes: this.options.outputLimitBytes,
      resultBytes: 4 * this.options.resultLimitBytes,
      maxResults: MAX_RESULTS,
    });
  }

  private timeoutOf(input: RunCodeInput): number {
    return resolveTimeoutMs(input.timeoutMs, this.options);
  }

  private async execute(
    sessionId: string,
    input: RunCodeInput,
    capture: CellCapture,
    emit: (event: CodeEvent) => void | Promise<void>,
    signal: AbortSignal | undefined,
  ) {
    const session = this.options.sessions.get(sessionId);
    const timeoutMs = this.timeoutOf(input);
    const started = performance.now();
    let end: { executionCount: number | null; contextId: string; language: CodeLanguage } = {
      executionCount: null,
      contextId: input.contextId ?? '',
      language: input.language ?? 'python',
    };
    let failure: SandpoolError | undefined;
    const outcome = await this.call(session, {
      request: {
        op: 'run',
        code: input.code,
        language: input.language,
        context_id: input.contextId,
        timeout_ms: timeoutMs,
        env: input.env ?? {},
        session_env: session.env,
        output_bytes: this.options.outputLimitBytes,
        result_bytes: this.options.resultLimitBytes,
      },
      timeoutMs: timeoutMs + CALL_MARGIN_MS,
      signal,
      onLine: async (line) => {
        if (line.kind === 'event') {
          const event = capture.take(line.event);
          if (event !== undefined) await emit(event);
        } else if (line.kind === 'end') {
          end = line;
          if (line.truncated) capture.truncated = true; // the bridge cut something itself
        } else if (line.kind === 'failure') {
          failure = failureError(line.code, line.message);
        }
      },
    });
    if (failure !== undefined) throw failure;
    if (outcome.kind === 'broken') {
      const error = capture.take({
        type: 'error',
        name: 'KernelDied',
        value: `The code interpreter stopped answering during this cell (${outcome.reason}); the next call starts a fresh context, so run the cells it needs again.`,
        traceback: '',
        context_restarted: true,
      });
      if (error !== undefined) await emit(error);
    }
    return {
      execution_count: end.executionCount,
      duration_ms: Math.round(performance.now() - started),
      context_id: end.contextId,
      language: end.language,
    };
  }

  private async control(
    sessionId: string,
    request: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const session = this.options.sessions.get(sessionId);
    let answer: Record<string, unknown> | undefined;
    let failure: SandpoolError | undefined;
    const outcome = await this.call(session, {
      request,
      timeoutMs: CONTROL_TIMEOUT_MS,
      onLine: (line: BridgeLine) => {
        if (line.kind === 'ok') answer = line.body;
        else if (line.kind === 'failure') failure = failureError(line.code, line.message);
      },
    });
    if (failure !== undefined) throw failure;
    if (outcome.kind === 'broken' || answer === undefined) {
      throw new SandpoolError(
        'runtime_unavailable',
        `The code interpreter did not answer (${outcome.kind === 'broken' ? outcome.reason : 'no answer'}); retry.`,
        1,
      );
    }
    return answer;
  }

  private async call(
    session: Session,
    call: Parameters<KernelBridgeClient['call']>[1],
  ): Promise<BridgeCallOutcome> {
    try {
      return await this.bridge.call(session.sandbox, call);
    } catch (error) {
      if (error instanceof SandpoolError && error.code === 'session_lost') {
        await this.options.sessions.markLost(session.id, 'its container is gone');
      }
      throw error;
    }
  }
}

function contextOf(body: Record<string, unknown>): CodeContextView {
  const view = readContextView(body);
  if (view === undefined) {
    throw new SandpoolError(
      'runtime_unavailable',
      'The code interpreter answered with something that is not a context; retry.',
      1,
    );
  }
  return view;
}

/** The bridge's refusal as an API error. */
function failureError(code: string, message: string): SandpoolError {
  switch (code) {
    case 'context_not_found':
      return new SandpoolError('context_not_found', message);
    case 'invalid_request':
    case 'busy':
      return new SandpoolError('invalid_request', message);
    case 'invalid_path':
      return new SandpoolError('invalid_path', message);
    default:
      return new SandpoolError(
        'runtime_unavailable',
        `The code interpreter failed: ${message}. Retry; if it persists, create a new session.`,
        1,
      );
  }
}

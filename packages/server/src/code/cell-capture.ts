import {
  clip,
  type CodeEnd,
  type CodeError,
  type CodeEvent,
  type CodeExecution,
  type CodeResult,
} from './code-event.js';

export interface CellCaptureLimits {
  /** Cap of stdout, and separately of stderr, in bytes (the exec cap). */
  outputBytes: number;
  /** Cap of all results of one cell together, in bytes of their formats. */
  resultBytes: number;
  /** Most results one cell may return. */
  maxResults: number;
}

/**
 * Applies a cell's output caps, whatever the bridge sent: stdout and stderr are cut at the exec
 * cap, results are kept until their total reaches the results cap (later ones are dropped), and
 * only the first error counts. `truncated` says that something was cut.
 */
export class CellCapture {
  private readonly left: Record<'stdout' | 'stderr', number>;
  private resultBytesLeft: number;
  private readonly results: CodeResult[] = [];
  private readonly text: Record<'stdout' | 'stderr', string[]> = { stdout: [], stderr: [] };
  private error: CodeError | undefined;
  truncated = false;

  constructor(private readonly limits: CellCaptureLimits) {
    this.left = { stdout: limits.outputBytes, stderr: limits.outputBytes };
    this.resultBytesLeft = limits.resultBytes;
  }

  /** The event as it may go out (cut to the caps), or `undefined` when nothing of it may. */
  take(
    event: Exclude<CodeEvent, { type: 'end' }>,
  ): Exclude<CodeEvent, { type: 'end' }> | undefined {
    switch (event.type) {
      case 'stdout':
      case 'stderr': {
        const room = this.left[event.type];
        const size = Buffer.byteLength(event.data);
        const data = size > room ? clip(event.data, room) : event.data;
        if (size > room) this.truncated = true;
        this.left[event.type] = room - Buffer.byteLength(data);
        if (data === '') return undefined;
        this.text[event.type].push(data);
        return { type: event.type, data };
      }
      case 'result': {
        const { type, ...result } = event;
        const size = JSON.stringify(result).length;
        if (result.truncated === true) this.truncated = true;
        if (this.results.length >= this.limits.maxResults || size > this.resultBytesLeft) {
          this.truncated = true;
          return undefined;
        }
        this.resultBytesLeft -= size;
        this.results.push(result);
        return { type, ...result };
      }
      case 'error': {
        if (this.error !== undefined) return undefined;
        const { type, ...error } = event;
        this.error = error;
        return { type, ...error };
      }
    }
  }

  /** The error the cell ended with, if any. */
  get failure(): CodeError | undefined {
    return this.error;
  }

  /** The last event of a stream. */
  end(end: Omit<CodeEnd, 'truncated'>): { type: 'end' } & CodeEnd {
    return { type: 'end', ...end, truncated: this.truncated };
  }

  /** The whole answer of a cell. */
  execution(end: Omit<CodeEnd, 'truncated'>): CodeExecution {
    return {
      results: this.results,
      stdout: this.text.stdout.join(''),
      stderr: this.text.stderr.join(''),
      ...(this.error === undefined ? {} : { error: this.error }),
      execution_count: end.execution_count,
      duration_ms: end.duration_ms,
      context_id: end.context_id,
      language: end.language,
      truncated: this.truncated,
    };
  }
}

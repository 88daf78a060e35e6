/**
 * Text meant for a model's context window: long output is cut to its head and tail (errors
 * usually show at the end), with a note that says what was left out and how to see it.
 */
export function clipForModel(text: string, limitChars: number, what: string): string {
  if (text.length <= limitChars) return text;
  const head = Math.ceil(limitChars * 0.4);
  const tail = limitChars - head;
  const omitted = text.length - head - tail;
  return (
    `${text.slice(0, head)}\n` +
    `[... ${omitted} characters of ${what} omitted: the output is too long to show whole. ` +
    `Redirect it to a file and read parts of it (head, tail, grep), or print less ...]\n` +
    text.slice(text.length - tail)
  );
}

/** The fields of an exec result a model needs. */
export interface ExecOutcome {
  stdout: string;
  stderr: string;
  exitCode: number;
  durationMs: number;
  timedOut: boolean;
  truncated: boolean;
}

/** One exec result as plain text: exit code first, then stdout and stderr, with notes. */
export function describeExecResult(
  result: ExecOutcome,
  limitChars: number,
  timeoutMs: number,
): string {
  const lines = [`exit_code: ${result.exitCode} (${result.durationMs} ms)`];
  if (result.timedOut) {
    lines.push(
      `note: the command hit its timeout of ${timeoutMs} ms and was killed with its child processes; ` +
        'raise timeout_seconds or run it in the background (nohup ... &) and poll.',
    );
  }
  if (result.truncated) {
    lines.push('note: the sandbox kept only the first 1 MiB of stdout or stderr.');
  }
  lines.push(
    result.stdout === ''
      ? 'stdout: (empty)'
      : `stdout:\n${clipForModel(result.stdout, limitChars, 'stdout')}`,
  );
  lines.push(
    result.stderr === ''
      ? 'stderr: (empty)'
      : `stderr:\n${clipForModel(result.stderr, limitChars, 'stderr')}`,
  );
  return lines.join('\n');
}

import {
  FileNotFoundError,
  InvalidPathError,
  InvalidRequestError,
  PayloadTooLargeError,
} from './errors.js';
import type { ExecResult } from './types.js';

/**
 * Text meant for a model's context window: long output keeps its head and its tail (errors
 * usually show at the end), with a note saying what was left out and how to see the rest. Used by
 * the MCP server and the LangChain tools.
 */
export function clipForModel(text: string, limitChars: number, what: string): string {
  if (text.length <= limitChars) return text;
  const head = Math.ceil(limitChars * 0.4);
  const tail = limitChars - head;
  const omitted = text.length - head - tail;
  return (
    `${text.slice(0, head)}\n` +
    `[... ${omitted} characters of ${what} omitted here (too long to show whole). ` +
    'Redirect the output to a file and look at parts of it with head, tail, grep or sed -n ...]\n' +
    text.slice(text.length - tail)
  );
}

/**
 * A command's result as a model should see it: exit code first, then each stream (clipped to
 * `limitChars`), with notes for a timeout and for output the sandbox capped.
 */
export function describeExecResult(
  result: ExecResult,
  limitChars: number,
  timeoutSeconds: number,
): string {
  const lines = [`exit_code: ${result.exitCode} (${result.durationMs} ms)`];
  if (result.timedOut) {
    lines.push(
      `note: the command hit its timeout of ${timeoutSeconds} s and was killed with all its ` +
        'child processes. Raise timeout_seconds, or start it in the background ' +
        '(nohup CMD > out.log 2>&1 &) and check on it later.',
    );
  }
  if (result.truncated) {
    lines.push('note: the sandbox kept only the first 1 MiB of stdout and of stderr.');
  }
  const stream = (name: string, value: string) =>
    value === '' ? `${name}: (empty)` : `${name}:\n${clipForModel(value, limitChars, name)}`;
  lines.push(stream('stdout', result.stdout), stream('stderr', result.stderr));
  return lines.join('\n');
}

/**
 * Mistakes a model can correct itself (no such file, a path outside the sandbox, a bad argument,
 * too large): agent tools hand these back as text. Failures of the service itself are not.
 */
export function isCorrectableByModel(error: unknown): error is Error {
  return (
    error instanceof FileNotFoundError ||
    error instanceof InvalidPathError ||
    error instanceof InvalidRequestError ||
    error instanceof PayloadTooLargeError
  );
}

import { InvalidArgumentError } from 'commander';

/**
 * Parsing of the client commands' arguments; pure functions, so they are tested without a
 * process.
 */

/**
 * The commands of a batch file: one a line; blank lines and lines starting with `#` are skipped,
 * and a line ending in `\` continues on the next.
 */
export function parseBatchText(text: string): string[] {
  const commands: string[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    // As in sh, a backslash-newline vanishes: the two lines become one.
    const line = pending === '' ? raw.trim() : `${pending}${raw}`;
    if (line.endsWith('\\')) {
      pending = line.slice(0, -1);
      continue;
    }
    pending = '';
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    commands.push(line);
  }
  if (pending.trim() !== '') commands.push(pending);
  return commands;
}

/** commander parser for a `KEY=VALUE` option given many times; collects into a record. */
export function collectEnvPair(
  pair: string,
  previous: Record<string, string> = {},
): Record<string, string> {
  const at = pair.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`expected KEY=VALUE, got "${pair}"`);
  return { ...previous, [pair.slice(0, at)]: pair.slice(at + 1) };
}

/** commander parser for a whole number of milliseconds (or seconds) greater than zero. */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a whole number greater than 0, got "${value}"`);
  }
  return n;
}

/**
 * What `sandpool exec -- <command...>` runs: one argument is a shell command line (run by
 * `/bin/sh -c`, so pipes and `&&` work); several are an argv, run without a shell.
 */
export function execTarget(words: readonly string[]): string | string[] {
  return words.length === 1 ? (words[0] ?? '') : [...words];
}

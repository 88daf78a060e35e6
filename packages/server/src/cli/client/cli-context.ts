import {
  AuthError,
  ConnectionError,
  SandboxError,
  type ConnectionOptions,
  type ExecResult,
  type SessionInfo,
} from '@sandpool/client';
import { Option, type Command } from 'commander';

/** The flags every client command takes. */
export interface ClientFlags {
  /** Base URL of the worker or coordinator (`--url`, env `SANDPOOL_URL`). */
  url?: string;
  /** API key (`--api-key`, env `SANDPOOL_API_KEY`). */
  apiKey?: string;
  /** Machine-readable output on stdout (`--json`). */
  json?: boolean;
}

/** Adds `--url` and `--api-key` (or their environment variables): where the service is. */
export function withConnectionOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--url <url>', 'worker or coordinator URL (default http://127.0.0.1:5000)').env(
        'SANDPOOL_URL',
      ),
    )
    .addOption(
      new Option('--api-key <key>', 'API key, sent as Authorization: Bearer').env(
        'SANDPOOL_API_KEY',
      ),
    );
}

/** Adds `--url`, `--api-key` and `--json` to a client command. */
export function withClientOptions(command: Command): Command {
  return withConnectionOptions(command).option(
    '--json',
    'print one JSON document on stdout instead of text',
  );
}

/** The SDK's connection options from the flags (the SDK applies the env and defaults too). */
export function connectionOptions(flags: ClientFlags): ConnectionOptions {
  return { url: flags.url, apiKey: flags.apiKey };
}

/** Writes a result line (or document) to stdout. */
export function printResult(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Writes a JSON document to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes a diagnostic line to stderr. */
export function printDiagnostic(text: string): void {
  process.stderr.write(`${text}\n`);
}

/**
 * Runs a command's action: any failure becomes one line on stderr (and, with `--json`, an
 * `{"error"}` document on stdout) and a non-zero exit code.
 *
 * @param failureExitCode - exit code on failure; `exec` uses 125 so that it cannot be mistaken
 *   for the exit code of the command it ran
 */
export async function runAction(
  name: string,
  flags: ClientFlags,
  action: () => Promise<number>,
  failureExitCode = 1,
): Promise<void> {
  try {
    process.exitCode = await action();
  } catch (error) {
    printDiagnostic(`sandpool ${name}: ${describeError(error)}`);
    if (flags.json === true) printJson({ error: errorJson(error) });
    process.exitCode = failureExitCode;
  }
}

/** One line that says what failed and, where it helps, what to do. */
export function describeError(error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ');
  if (error instanceof AuthError && !/api.key/i.test(message)) {
    return `${message} (pass --api-key or set SANDPOOL_API_KEY)`;
  }
  if (error instanceof ConnectionError) return message;
  if (error instanceof SandboxError) return `${message} [${error.code}]`;
  return message;
}

function errorJson(error: unknown): { code: string; message: string } {
  return {
    code: error instanceof SandboxError ? error.code : 'cli_error',
    message: error instanceof Error ? error.message : String(error),
  };
}

/** A session as the HTTP API shows it (snake_case), for `--json`. */
export function sessionJson(session: SessionInfo): Record<string, unknown> {
  return {
    session_id: session.sessionId,
    worker_id: session.workerId,
    created_at: session.createdAt.toISOString(),
    expires_at: session.expiresAt.toISOString(),
    metadata: session.metadata,
  };
}

/** An exec result as the HTTP API shows it (snake_case), for `--json`. */
export function execResultJson(result: ExecResult): Record<string, unknown> {
  return {
    stdout: result.stdout,
    stderr: result.stderr,
    exit_code: result.exitCode,
    duration_ms: result.durationMs,
    timed_out: result.timedOut,
    truncated: result.truncated,
  };
}

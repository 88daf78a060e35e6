import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Sandbox, SandpoolClient, type ExecResult, type HealthStatus } from '@sandpool/client';
import type { Command } from 'commander';
import { collectEnvPair, execTarget, parseBatchText, parsePositiveInt } from './client/cli-args.js';
import {
  connectionOptions,
  describeError,
  execResultJson,
  printDiagnostic,
  printJson,
  printResult,
  runAction,
  sessionJson,
  withClientOptions,
  type ClientFlags,
} from './client/cli-context.js';
import { runSelfTest, type SelfTestStep } from './client/self-test.js';

/** Exit code of `sandpool exec` when the command hit its timeout (as `timeout(1)` does). */
const EXIT_TIMED_OUT = 124;
/** Exit code of `sandpool exec` when sandpool itself failed (as `docker run` does). */
const EXIT_SANDPOOL_FAILED = 125;
/** Exit code after Ctrl-C (128 + SIGINT). */
const EXIT_INTERRUPTED = 130;

/**
 * Lifetime of a session `exec` or `batch` opens for itself, in seconds: if the CLI dies before
 * it closes the session, the worker reaps it soon instead of after the default hour.
 */
const OWN_SESSION_TTL_SECONDS = 600;

/**
 * Registers the client commands of `sandpool`: `test`, `exec`, `upload`, `download`, `batch`,
 * `health` and `sessions`. They talk to a worker or a coordinator over the public HTTP API
 * through `@sandpool/client`; results go to stdout (JSON with `--json`), diagnostics to stderr.
 */
export function registerClientCommands(program: Command): void {
  registerTest(program);
  registerExec(program);
  registerUpload(program);
  registerDownload(program);
  registerBatch(program);
  registerHealth(program);
  registerSessions(program);
}

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`;
}

function registerTest(program: Command): void {
  withClientOptions(
    program
      .command('test')
      .description(
        'Self-test a running worker or coordinator: open a session, check the user is ' +
          'sandboxuser (not root), python3, upload and run a script, a batch, close',
      ),
  )
    .option('--template <name>', 'template of the session (default base)')
    .addHelpText('after', examples('sandpool test', 'sandpool test --url http://10.0.0.5:8000'))
    .action((flags: ClientFlags & { template?: string }) =>
      runAction('test', flags, async () => {
        const url = new SandpoolClient(connectionOptions(flags)).url;
        if (flags.json !== true) printDiagnostic(`testing sandpool at ${url}`);
        const connection = { ...connectionOptions(flags), template: flags.template };
        const steps = await runSelfTest(connection, (step) => {
          if (flags.json !== true) printResult(formatStep(step));
        });
        const ok = steps.every((step) => step.ok === true);
        if (flags.json === true) {
          printJson({
            ok,
            url,
            steps: steps.map((s) => ({
              step: s.name,
              ok: s.ok ?? null,
              duration_ms: s.durationMs,
              detail: s.detail,
            })),
          });
        } else {
          printResult(ok ? 'all steps passed' : 'some steps FAILED');
        }
        return ok ? 0 : 1;
      }),
    );
}

function formatStep(step: SelfTestStep): string {
  const mark = step.ok === undefined ? 'skip' : step.ok ? 'ok' : 'FAIL';
  return `${mark.padEnd(4)}  ${step.name.padEnd(24)} ${`${step.durationMs} ms`.padStart(8)}  ${step.detail}`;
}

interface ExecFlags extends ClientFlags {
  session?: string;
  template?: string;
  timeout?: number;
  cwd?: string;
  env?: Record<string, string>;
  stdin?: boolean;
}

function registerExec(program: Command): void {
  withClientOptions(
    program
      .command('exec')
      .description(
        'Run a command in a sandbox and exit with its exit code. One argument runs through ' +
          '/bin/sh -c; several run as argv. Opens (and closes) a session unless --session is given',
      )
      .argument('<command...>', 'the command; put it after --')
      .option('-s, --session <id>', 'run in this existing session')
      .option('--template <name>', 'template of the new session (default base)')
      .option(
        '-t, --timeout <ms>',
        'time limit in milliseconds (server default 60000)',
        parsePositiveInt,
      )
      .option('--cwd <dir>', 'working directory in the sandbox (default the home)')
      .option('-e, --env <KEY=VALUE>', 'environment variable; repeat for more', collectEnvPair)
      .option('-i, --stdin', "send this process's stdin to the command"),
  )
    .addHelpText(
      'after',
      "\nExit code: the command's own; 124 when it timed out; 125 when sandpool failed.\n" +
        examples(
          "sandpool exec -- python3 -c 'print(6 * 7)'",
          "sandpool exec -- 'ls -la | wc -l'",
          'sandpool exec --session 3f2a… --timeout 5000 -- make test',
          'echo hello | sandpool exec --stdin -- cat',
        ),
    )
    .action((words: string[], flags: ExecFlags) =>
      runAction('exec', flags, () => execCommand(words, flags), EXIT_SANDPOOL_FAILED),
    );
}

async function execCommand(words: string[], flags: ExecFlags): Promise<number> {
  const stdin = flags.stdin === true ? await readStdin() : undefined;
  const interrupted = new AbortController();
  const onSigint = (): void => interrupted.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  const sandbox = await openSandbox(flags, interrupted.signal);
  try {
    const streaming = flags.json !== true;
    const result = await sandbox.exec(execTarget(words), {
      timeoutMs: flags.timeout,
      cwd: flags.cwd,
      env: flags.env,
      stdin,
      signal: interrupted.signal,
      // Output is written as it arrives; with --json it is part of the one document instead.
      onStdout: streaming ? (data) => process.stdout.write(data) : undefined,
      onStderr: streaming ? (data) => process.stderr.write(data) : undefined,
    });
    if (flags.json === true) printJson(execResultJson(result));
    if (result.truncated) printDiagnostic('sandpool exec: output was truncated at the server cap');
    if (result.timedOut) {
      printDiagnostic(`sandpool exec: timed out after ${result.durationMs} ms; killed`);
      return EXIT_TIMED_OUT;
    }
    return result.exitCode;
  } catch (error) {
    if (interrupted.signal.aborted) return EXIT_INTERRUPTED;
    throw error;
  } finally {
    process.removeListener('SIGINT', onSigint);
    if (flags.session === undefined) await sandbox.close();
  }
}

/** The `--session` sandbox, or a new short-lived one the caller closes. */
async function openSandbox(
  flags: ClientFlags & { session?: string; template?: string },
  signal?: AbortSignal,
): Promise<Sandbox> {
  if (flags.session !== undefined) {
    return Sandbox.connect(flags.session, { ...connectionOptions(flags), signal });
  }
  return Sandbox.create({
    ...connectionOptions(flags),
    template: flags.template,
    ttlSeconds: OWN_SESSION_TTL_SECONDS,
    metadata: { created_by: 'sandpool cli' },
    signal,
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface SessionFlags extends ClientFlags {
  session: string;
}

function registerUpload(program: Command): void {
  withClientOptions(
    program
      .command('upload')
      .description('Upload a local file into a session (streamed)')
      .argument('<local>', 'local file')
      .argument('[remote]', 'path in the sandbox; relative is under the home (default: its name)')
      .requiredOption('-s, --session <id>', 'the session'),
  )
    .addHelpText(
      'after',
      examples(
        'sandpool upload ./data.csv --session 3f2a…',
        'sandpool upload ./main.py src/main.py --session 3f2a…',
      ),
    )
    .action((local: string, remote: string | undefined, flags: SessionFlags) =>
      runAction('upload', flags, async () => {
        const sandbox = await Sandbox.connect(flags.session, connectionOptions(flags));
        const written = await sandbox.uploadFile(local, remote ?? basename(local));
        if (flags.json === true) printJson(written);
        else printResult(`uploaded ${local} -> ${written.path} (${written.size} bytes)`);
        return 0;
      }),
    );
}

function registerDownload(program: Command): void {
  withClientOptions(
    program
      .command('download')
      .description('Download a file from a session (streamed); LOCAL "-" writes it to stdout')
      .argument('<remote>', 'path in the sandbox; relative is under the home')
      .argument('[local]', 'local path, or - for stdout (default: its name)')
      .requiredOption('-s, --session <id>', 'the session'),
  )
    .addHelpText(
      'after',
      examples(
        'sandpool download out/report.json --session 3f2a…',
        'sandpool download /tmp/log.txt - --session 3f2a… | tail',
      ),
    )
    .action((remote: string, local: string | undefined, flags: SessionFlags) =>
      runAction('download', flags, async () => {
        const sandbox = await Sandbox.connect(flags.session, connectionOptions(flags));
        if (local === '-') {
          const stream = await sandbox.readFileStream(remote);
          await pipeline(Readable.fromWeb(stream), process.stdout);
          return 0;
        }
        const saved = await sandbox.downloadFile(remote, local ?? basename(remote));
        if (flags.json === true) printJson(saved);
        else printResult(`downloaded ${remote} -> ${saved.path} (${saved.size} bytes)`);
        return 0;
      }),
    );
}

interface BatchFlags extends ClientFlags {
  session?: string;
  stopOnError?: boolean;
  timeout?: number;
}

function registerBatch(program: Command): void {
  withClientOptions(
    program
      .command('batch')
      .description(
        'Run the commands of a file (one a line; # comments) in one session, in order. ' +
          'Exits 0 when all exit 0, else 1',
      )
      .argument('<file>', 'the file, or - for stdin')
      .option('--stop-on-error', 'stop after the first command that fails')
      .option('-s, --session <id>', 'run in this existing session (default: a new one)')
      .option('-t, --timeout <ms>', 'time limit of each command in milliseconds', parsePositiveInt),
  )
    .addHelpText(
      'after',
      examples(
        'sandpool batch steps.txt --stop-on-error',
        "printf 'python3 --version\\nwhoami\\n' | sandpool batch -",
      ),
    )
    .action((file: string, flags: BatchFlags) =>
      runAction('batch', flags, async () => {
        const text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
        const commands = parseBatchText(text);
        if (commands.length === 0)
          throw new Error(`no commands in ${file === '-' ? 'stdin' : file}`);
        const sandbox = await openSandbox(flags);
        try {
          const results = await runBatch(sandbox, commands, flags);
          const ok =
            results.length === commands.length &&
            results.every((r) => r.exitCode === 0 && !r.timedOut);
          if (flags.json === true) {
            printJson({
              ok,
              results: results.map((r, i) => ({ command: commands[i], ...execResultJson(r) })),
            });
          } else {
            printResult(
              `${results.length} of ${commands.length} commands ran; ${ok ? 'all ok' : 'some failed'}`,
            );
          }
          return ok ? 0 : 1;
        } finally {
          if (flags.session === undefined) await sandbox.close();
        }
      }),
    );
}

/** Runs the commands one by one, printing each as it ends (unless `--json`). */
async function runBatch(
  sandbox: Sandbox,
  commands: string[],
  flags: BatchFlags,
): Promise<ExecResult[]> {
  if (flags.json === true) {
    return sandbox.execBatch(commands, {
      stopOnError: flags.stopOnError === true,
      timeoutMs: flags.timeout,
    });
  }
  const results: ExecResult[] = [];
  for (const command of commands) {
    printResult(`$ ${command}`);
    const result = await sandbox.exec(command, {
      timeoutMs: flags.timeout,
      onStdout: (data) => process.stdout.write(data),
      onStderr: (data) => process.stderr.write(data),
    });
    results.push(result);
    const status = result.timedOut ? 'timed out' : `exit ${result.exitCode}`;
    printResult(`[${status}, ${result.durationMs} ms]`);
    if (flags.stopOnError === true && (result.exitCode !== 0 || result.timedOut)) break;
  }
  return results;
}

function registerHealth(program: Command): void {
  withClientOptions(
    program
      .command('health')
      .description('Show whether the worker or coordinator is healthy; exits 1 when it is not'),
  )
    .addHelpText(
      'after',
      examples('sandpool health', 'sandpool health --json --url http://localhost:8000'),
    )
    .action((flags: ClientFlags) =>
      runAction('health', flags, async () => {
        const client = new SandpoolClient(connectionOptions(flags));
        const health = await client.health();
        if (flags.json === true) printJson(health);
        else printResult(formatHealth(client.url, health));
        return health.status === 'unhealthy' || health.status === 'unknown' ? 1 : 0;
      }),
    );
}

function formatHealth(url: string, health: HealthStatus): string {
  const parts = [`${health.status} at ${url}`];
  if (health.worker_id !== undefined) parts.push(`worker ${health.worker_id}`);
  if (health.pool_size !== undefined) parts.push(`pool ${health.pool_size}`);
  if (health.active_sessions !== undefined) parts.push(`${health.active_sessions} sessions`);
  if (health.reason !== undefined) parts.push(`reason: ${health.reason}`);
  const lines = [parts.join(', ')];
  for (const w of health.workers ?? []) {
    lines.push(
      `  ${w.healthy ? 'healthy  ' : 'unhealthy'} ${w.worker_id} ${w.url} pool ${w.pool_size}, ${w.active_sessions} sessions`,
    );
  }
  return lines.join('\n');
}

function registerSessions(program: Command): void {
  const sessions = program
    .command('sessions')
    .description('List or remove sessions')
    .addHelpText('after', examples('sandpool sessions list', 'sandpool sessions rm 3f2a… 9c1d…'));
  withClientOptions(sessions.command('list').alias('ls').description('List open sessions')).action(
    (flags: ClientFlags) =>
      runAction('sessions list', flags, async () => {
        const list = await new SandpoolClient(connectionOptions(flags)).listSessions();
        if (flags.json === true) {
          printJson({ sessions: list.map(sessionJson) });
          return 0;
        }
        if (list.length === 0) {
          printDiagnostic('no open sessions');
          return 0;
        }
        printResult(['SESSION', 'WORKER', 'CREATED', 'EXPIRES'].join('\t'));
        for (const s of list) {
          printResult(
            [s.sessionId, s.workerId, s.createdAt.toISOString(), s.expiresAt.toISOString()].join(
              '\t',
            ),
          );
        }
        return 0;
      }),
  );
  withClientOptions(
    sessions
      .command('rm')
      .alias('remove')
      .description('Close sessions and destroy their containers')
      .argument('<id...>', 'session ids'),
  ).action((ids: string[], flags: ClientFlags) =>
    runAction('sessions rm', flags, async () => {
      const client = new SandpoolClient(connectionOptions(flags));
      const removed: string[] = [];
      const failed: { session_id: string; error: string }[] = [];
      // Try every id, so that one already gone does not keep the others open.
      for (const id of ids) {
        try {
          await client.deleteSession(id);
          removed.push(id);
          if (flags.json !== true) printResult(`removed ${id}`);
        } catch (error) {
          failed.push({ session_id: id, error: describeError(error) });
          printDiagnostic(`sandpool sessions rm: ${id}: ${describeError(error)}`);
        }
      }
      if (flags.json === true) printJson({ removed, failed });
      return failed.length === 0 ? 0 : 1;
    }),
  );
}

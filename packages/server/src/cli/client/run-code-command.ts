import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { imagesOf, Sandbox, type Execution, type Result } from '@sandpool/client';
import { Option, type Command } from 'commander';
import { collectEnvPair, parsePositiveInt } from './cli-args.js';
import {
  connectionOptions,
  printDiagnostic,
  printJson,
  printResult,
  runAction,
  withClientOptions,
  type ClientFlags,
} from './cli-context.js';

/** Exit codes as `sandpool exec` uses them: 124 timed out, 125 sandpool failed, 130 Ctrl-C. */
const EXIT_CELL_ERROR = 1;
const EXIT_TIMED_OUT = 124;
const EXIT_SANDPOOL_FAILED = 125;
const EXIT_INTERRUPTED = 130;
/** A session `run-code` opens for itself ends this soon if the CLI dies before closing it. */
const OWN_SESSION_TTL_SECONDS = 600;

interface RunCodeFlags extends ClientFlags {
  session?: string;
  language?: 'python' | 'bash';
  context?: string;
  timeout?: number;
  env?: Record<string, string>;
  outDir: string;
  template: string;
}

/**
 * `sandpool run-code FILE|-`: runs a cell in a session's code interpreter, printing output as it
 * comes and text results after, and saving images (matplotlib figures) to files.
 */
export function registerRunCodeCommand(program: Command): void {
  withClientOptions(
    program
      .command('run-code')
      .description(
        'Run a code cell (Python by default) in a persistent notebook kernel: prints output and ' +
          'text results, saves images (figures) to files. Opens (and closes) a session unless ' +
          '--session is given; variables persist between calls with the same --session',
      )
      .argument('<file>', 'the cell: a file, or - for stdin')
      .option('-s, --session <id>', 'run in this existing session (its variables persist)')
      .option('--template <name>', 'template of the new session', 'code-interpreter')
      .addOption(
        new Option('-l, --language <language>', 'the context language').choices(['python', 'bash']),
      )
      .option('-c, --context <id>', 'run in this context (from the contexts API)')
      .option('-t, --timeout <ms>', 'interrupt the cell after this many ms', parsePositiveInt)
      .option('-e, --env <KEY=VALUE>', 'environment variable for this cell', collectEnvPair)
      .option('-o, --out-dir <dir>', 'where images are saved', '.'),
  )
    .addHelpText(
      'after',
      '\nExit code: 0, or 1 when the cell raised an error; 124 when it timed out; 125 when ' +
        'sandpool failed.\n\nExamples:\n' +
        '  $ sandpool run-code analysis.py --session sb_… --out-dir plots\n' +
        "  $ echo 'import math; math.pi' | sandpool run-code -\n",
    )
    .action((file: string, flags: RunCodeFlags) =>
      runAction('run-code', flags, () => runCodeCommand(file, flags), EXIT_SANDPOOL_FAILED),
    );
}

async function runCodeCommand(file: string, flags: RunCodeFlags): Promise<number> {
  const code = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  const interrupted = new AbortController();
  const onSigint = (): void => interrupted.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  const sandbox =
    flags.session !== undefined
      ? await Sandbox.connect(flags.session, {
          ...connectionOptions(flags),
          signal: interrupted.signal,
        })
      : await Sandbox.create({
          ...connectionOptions(flags),
          template: flags.template,
          ttlSeconds: OWN_SESSION_TTL_SECONDS,
          metadata: { created_by: 'sandpool cli run-code' },
          signal: interrupted.signal,
        });
  try {
    const streaming = flags.json !== true;
    const execution = await sandbox.runCode(code, {
      language: flags.language,
      context: flags.context,
      timeoutMs: flags.timeout,
      env: flags.env,
      signal: interrupted.signal,
      onStdout: streaming ? (data) => process.stdout.write(data) : undefined,
      onStderr: streaming ? (data) => process.stderr.write(data) : undefined,
    });
    const saved = await saveImages(execution, flags.outDir);
    if (flags.json === true) {
      printJson(executionJson(execution, saved));
    } else {
      execution.results.forEach((result, index) => {
        const text = result.text ?? result.markdown;
        if (text !== undefined && saved.get(result) === undefined) printResult(text);
        for (const path of saved.get(result) ?? []) printResult(`saved ${path}`);
        if (text === undefined && !saved.has(result)) {
          printDiagnostic(
            `result ${index + 1} has no text form (${Object.keys(result).join(', ')})`,
          );
        }
      });
      if (execution.error !== undefined) {
        const { name, value, traceback } = execution.error;
        printDiagnostic(traceback !== '' ? traceback : `${name}: ${value}`);
        if (execution.error.contextRestarted) {
          printDiagnostic('sandpool run-code: the context was restarted; its variables are gone');
        }
      }
      if (execution.truncated)
        printDiagnostic('sandpool run-code: output was cut at the server cap');
    }
    if (execution.error?.timedOut === true) return EXIT_TIMED_OUT;
    return execution.error === undefined ? 0 : EXIT_CELL_ERROR;
  } catch (error) {
    if (interrupted.signal.aborted) return EXIT_INTERRUPTED;
    throw error;
  } finally {
    process.removeListener('SIGINT', onSigint);
    if (flags.session === undefined) await sandbox.close();
  }
}

/** Writes each image to `dir` as `cell<count>-<n>.<ext>`; answers the paths by result. */
async function saveImages(execution: Execution, dir: string): Promise<Map<Result, string[]>> {
  const saved = new Map<Result, string[]>();
  let n = 0;
  for (const result of execution.results) {
    for (const image of imagesOf(result)) {
      if (n === 0) await mkdir(dir, { recursive: true });
      n += 1;
      const ext = image.mimeType === 'image/png' ? 'png' : 'jpg';
      const path = resolve(join(dir, `cell${execution.executionCount ?? 0}-${n}.${ext}`));
      await writeFile(path, Buffer.from(image.data, 'base64'));
      saved.set(result, [...(saved.get(result) ?? []), path]);
    }
  }
  return saved;
}

/** The execution in the API's snake_case, images replaced by the files they were saved to. */
function executionJson(execution: Execution, saved: Map<Result, string[]>) {
  return {
    results: execution.results.map((result) => {
      const rest: Record<string, unknown> = { ...result };
      delete rest.png; // saved to files instead: base64 in a terminal helps nobody
      delete rest.jpeg;
      delete rest.isMainResult;
      return { ...rest, is_main_result: result.isMainResult, files: saved.get(result) ?? [] };
    }),
    stdout: execution.logs.stdout.join(''),
    stderr: execution.logs.stderr.join(''),
    error:
      execution.error === undefined
        ? null
        : {
            name: execution.error.name,
            value: execution.error.value,
            traceback: execution.error.traceback,
            timed_out: execution.error.timedOut,
            context_restarted: execution.error.contextRestarted,
          },
    execution_count: execution.executionCount,
    duration_ms: execution.durationMs,
    context_id: execution.contextId,
    truncated: execution.truncated,
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

import { tool } from '@langchain/core/tools';
import {
  clipForModel,
  describeExecResult,
  describeProcessForModel,
  isCorrectableByModel,
  Sandbox,
  type SandboxCreateOptions,
} from '@sandpool/client';
import { z } from 'zod';
import { createRunCodeTool } from './run-code-tool.js';

/** Default of {@link SandboxToolsOptions.outputLimitChars}. */
export const DEFAULT_OUTPUT_LIMIT_CHARS = 10_000;
/** Default of {@link SandboxToolsOptions.defaultTimeoutMs}. */
export const DEFAULT_TOOL_TIMEOUT_MS = 60_000;
/** Largest timeout a model may ask for, in seconds (10 minutes). */
const MAX_TIMEOUT_SECONDS = 600;

/** Options of {@link createSandboxTools}. */
export interface SandboxToolsOptions extends SandboxCreateOptions {
  /**
   * An open sandbox to bind the tools to. The toolkit then does not own it: `close()` leaves it
   * open. Without it, a new sandbox is created (with the other options) and closed by `close()`.
   */
  sandbox?: Sandbox;
  /**
   * Longest stdout, stderr or file text handed to the model, in characters; longer text keeps
   * its head and tail with a note in between. Default 10000.
   */
  outputLimitChars?: number;
  /** Timeout of a command when the model names none, in milliseconds; default 60000. */
  defaultTimeoutMs?: number;
}

const execSchema = z.object({
  command: z
    .string()
    .min(1)
    .describe(
      'Shell command, run by /bin/sh -c as an unprivileged user in /home/sandboxuser. ' +
        'Pipes, && and redirects work. No network. Example: python3 script.py',
    ),
  timeout_seconds: z
    .number()
    .int()
    .min(1)
    .max(MAX_TIMEOUT_SECONDS)
    .optional()
    .describe('Kill the command (and its children) after this many seconds; default 60.'),
  cwd: z
    .string()
    .optional()
    .describe('Working directory; default /home/sandboxuser. Relative paths are under it.'),
});

const writeFileSchema = z.object({
  path: z
    .string()
    .min(1)
    .describe(
      'File path; relative paths are under /home/sandboxuser, absolute ones must be under it or /tmp. Parent directories are created.',
    ),
  content: z.string().describe('The whole new content of the file (UTF-8 text); replaces it.'),
});

const readFileSchema = z.object({
  path: z.string().min(1).describe('File path; relative paths are under /home/sandboxuser.'),
});

const startProcessSchema = z.object({
  command: z.string().min(1).describe('Shell command, for example: python3 -m http.server 8000'),
  tag: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/)
    .optional()
    .describe('A name to refer to the process by instead of its pid, for example: web'),
});

const processOutputSchema = z.object({
  process: z.string().min(1).describe('The pid (as text) or the tag of the process.'),
  wait_seconds: z
    .number()
    .int()
    .min(0)
    .max(120)
    .optional()
    .describe('Wait up to this many seconds for the process to exit; default 0.'),
});

/** The tools {@link createSandboxTools} makes, each bound to the toolkit's sandbox. */
function makeTools(sandbox: Sandbox, limitChars: number, defaultTimeoutMs: number) {
  const exec = tool(
    async ({ command, timeout_seconds: seconds, cwd }) => {
      const timeoutMs = seconds === undefined ? defaultTimeoutMs : seconds * 1000;
      const result = await sandbox.exec(command, { timeoutMs, cwd });
      return describeExecResult(result, limitChars, timeoutMs / 1000);
    },
    {
      name: 'sandbox_exec',
      description:
        'Run a shell command in an isolated Linux sandbox (Debian, python3, no network) and get ' +
        'its exit code, stdout and stderr. Files persist between calls. A non-zero exit code ' +
        'is reported, not raised. Long output is shortened: redirect it to a file and read parts.',
      schema: execSchema,
    },
  );

  const writeFile = tool(
    async ({ path, content }) =>
      explainFileErrors(async () => {
        const written = await sandbox.writeFile(path, content);
        return `wrote ${written.size} bytes to ${written.path}`;
      }),
    {
      name: 'sandbox_write_file',
      description:
        'Create or overwrite a text file in the sandbox (for example a script to run with ' +
        'sandbox_exec). Safer than echo or heredocs for code: nothing is interpreted by a shell.',
      schema: writeFileSchema,
    },
  );

  const readFile = tool(
    async ({ path }) =>
      explainFileErrors(async () => {
        const text = await sandbox.readTextFile(path);
        return text === '' ? `(${path} is empty)` : clipForModel(text, limitChars, path);
      }),
    {
      name: 'sandbox_read_file',
      description:
        'Read a text file from the sandbox. Long files are shortened to their start and end; ' +
        'use sandbox_exec with head, tail, sed -n or grep to see other parts.',
      schema: readFileSchema,
    },
  );

  const startProcess = tool(
    async ({ command, tag }) =>
      explainFileErrors(async () => {
        const started = await sandbox.processes.start(command, { tag });
        return `started pid ${started.pid}${started.tag === null ? '' : ` (tag ${started.tag})`}; read its output with sandbox_process_output`;
      }),
    {
      name: 'sandbox_start_process',
      description:
        'Start a long-running shell command in the background (a web server, a long build) and ' +
        'return at once with its pid. It keeps running between calls; read its output with ' +
        'sandbox_process_output. Use sandbox_exec for commands that finish.',
      schema: startProcessSchema,
    },
  );

  const processOutput = tool(
    async ({ process, wait_seconds: waitSeconds }) =>
      explainFileErrors(() =>
        describeProcessForModel(sandbox, process, limitChars, waitSeconds ?? 0),
      ),
    {
      name: 'sandbox_process_output',
      description:
        'Show whether a background process still runs or how it exited, and its output so far ' +
        '(shortened when long). With wait_seconds, first wait up to that long for it to exit.',
      schema: processOutputSchema,
    },
  );

  return { exec, writeFile, readFile, startProcess, processOutput };
}

/** The sandbox tools' types, for code that wants one of them by name. */
export type SandboxTools = ReturnType<typeof makeTools>;

/** Mistakes a model can fix go back to it as text; failures of the service itself are thrown. */
async function explainFileErrors(run: () => Promise<string>): Promise<string> {
  try {
    return await run();
  } catch (error) {
    if (isCorrectableByModel(error)) return `error: ${error.message}`;
    throw error;
  }
}

/**
 * LangChain tools bound to one sandpool sandbox, and the sandbox's lifecycle. End it with
 * `close()`, or let `await using` do it.
 */
export class SandboxToolkit implements AsyncDisposable {
  /** Runs a shell command: `sandbox_exec`. */
  readonly execTool: SandboxTools['exec'];
  /** Writes a text file: `sandbox_write_file`. */
  readonly writeFileTool: SandboxTools['writeFile'];
  /** Reads a text file: `sandbox_read_file`. */
  readonly readFileTool: SandboxTools['readFile'];
  /**
   * Runs a Python cell in the sandbox's code interpreter: `run_code` (the sandbox needs the
   * `code-interpreter` template, so it is not in {@link SandboxToolkit.tools}; add it yourself).
   */
  readonly runCodeTool: ReturnType<typeof createRunCodeTool>;
  /** Starts a background process: `sandbox_start_process`. */
  readonly startProcessTool: SandboxTools['startProcess'];
  /** Reads a background process's state and output: `sandbox_process_output`. */
  readonly processOutputTool: SandboxTools['processOutput'];

  /** @internal Use {@link createSandboxTools}. */
  constructor(
    /** The sandbox every tool runs in. */
    readonly sandbox: Sandbox,
    private readonly ownsSandbox: boolean,
    options: { outputLimitChars: number; defaultTimeoutMs: number },
  ) {
    const tools = makeTools(sandbox, options.outputLimitChars, options.defaultTimeoutMs);
    this.execTool = tools.exec;
    this.writeFileTool = tools.writeFile;
    this.readFileTool = tools.readFile;
    this.runCodeTool = createRunCodeTool(
      sandbox,
      options.outputLimitChars,
      options.defaultTimeoutMs,
    );
    this.startProcessTool = tools.startProcess;
    this.processOutputTool = tools.processOutput;
  }

  /** The background-process pair, for agents that run servers and read their logs. */
  get processTools(): [SandboxTools['startProcess'], SandboxTools['processOutput']] {
    return [this.startProcessTool, this.processOutputTool];
  }

  /** The three tools, for `model.bindTools(...)` and `new ToolNode(...)`. */
  get tools(): [SandboxTools['exec'], SandboxTools['writeFile'], SandboxTools['readFile']] {
    return [this.execTool, this.writeFileTool, this.readFileTool];
  }

  /**
   * Closes the sandbox if the toolkit created it (its container is destroyed); a sandbox passed
   * in stays open. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.ownsSandbox) await this.sandbox.close();
  }

  /** `await using toolkit = await createSandboxTools()` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Makes LangChain.js tools that run commands and move files in one sandbox:
 *
 * ```ts
 * await using toolkit = await createSandboxTools({ ttlSeconds: 600 });
 * const model = chatModel.bindTools(toolkit.tools);
 * const toolNode = new ToolNode(toolkit.tools);
 * ```
 *
 * Without `options.sandbox` it opens a new sandbox (SANDPOOL_URL and SANDPOOL_API_KEY, or `url`
 * and `apiKey`), which `close()` ends.
 */
export async function createSandboxTools(
  options: SandboxToolsOptions = {},
): Promise<SandboxToolkit> {
  const { sandbox, outputLimitChars, defaultTimeoutMs, ...createOptions } = options;
  const settings = {
    outputLimitChars: outputLimitChars ?? DEFAULT_OUTPUT_LIMIT_CHARS,
    defaultTimeoutMs: defaultTimeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS,
  };
  if (sandbox !== undefined) return new SandboxToolkit(sandbox, false, settings);
  return new SandboxToolkit(await Sandbox.create(createOptions), true, settings);
}

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  clipForModel,
  describeExecResult,
  type FileEntry,
  type SessionInfo,
} from '@sandpool/client';
import { z } from 'zod';
import type { McpSandbox } from './mcp-sandbox.js';
import { registerRunCodeTool } from './run-code-tool.js';
import type { SandboxLease } from './sandbox-lease.js';
import { registerProcessTools } from './process-tools.js';

/** Options of {@link createSandboxMcpServer}. */
export interface SandboxMcpServerOptions {
  /** Longest stdout, stderr or file text handed to the model, in characters; default 20000. */
  outputLimitChars?: number;
  /** Largest file `read_file` reads, in bytes; default 1 MiB. */
  readLimitBytes?: number;
  /** The server's version, reported to clients. */
  version?: string;
}

const DEFAULT_OUTPUT_LIMIT_CHARS = 20_000;
const DEFAULT_READ_LIMIT_BYTES = 1024 * 1024;
const DEFAULT_TIMEOUT_SECONDS = 60;
const MAX_TIMEOUT_SECONDS = 3600;

const PATH_RULES =
  'Relative paths are under the home directory /home/sandboxuser; absolute paths must be under it or under /tmp.';

const INSTRUCTIONS = [
  'These tools run in an isolated Linux sandbox (Debian with python3 and common command-line tools,',
  'no network access, an unprivileged user, working directory /home/sandboxuser).',
  'The sandbox is created at the first tool call and keeps its files between calls until the',
  'session ends. Write code to files with write_file, run it with run_command, and read results',
  'with read_file. Long output is shortened: redirect it to a file and inspect parts of it.',
].join(' ');

function text(message: string, isError = false): CallToolResult {
  return { content: [{ type: 'text', text: message }], ...(isError ? { isError } : {}) };
}

/** Mistakes the model can correct itself: no such file, a path outside the sandbox, too large. */
const CORRECTABLE = new Set([
  'file_not_found',
  'invalid_path',
  'invalid_request',
  'payload_too_large',
]);
const GONE = new Set(['session_not_found', 'session_lost']);

/**
 * The API error code of a failure, from the SDK's errors (over HTTP) and the worker's own (in
 * process) alike: both carry the code of the one error registry.
 */
function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === 'string' ? code : undefined;
}

/**
 * Failures the model can act on come back as a tool error it can read; the rest (the service is
 * down, a bug) propagate, and the SDK reports them as a failed call.
 */
async function guarded(run: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await run();
  } catch (error) {
    const code = codeOf(error);
    if (code === undefined || !(error instanceof Error)) throw error;
    if (CORRECTABLE.has(code)) return text(`error: ${error.message}`, true);
    if (GONE.has(code)) {
      return text(
        `error: ${error.message}. The sandbox is gone, with its files; call sandbox_session ` +
          'with action "new" to start a fresh one.',
        true,
      );
    }
    throw error;
  }
}

function describeSession(info: SessionInfo, attached: boolean): string {
  return [
    `session_id: ${info.sessionId}`,
    `worker_id: ${info.workerId}`,
    `created_at: ${info.createdAt.toISOString()}`,
    `expires_at: ${info.expiresAt.toISOString()}`,
    `owned_by_this_connection: ${attached ? 'no (closing the connection leaves it open)' : 'yes (closed when the connection ends)'}`,
  ].join('\n');
}

function describeEntries(path: string, entries: readonly FileEntry[]): string {
  if (entries.length === 0) return `${path} is empty`;
  const sorted = [...entries].sort((a, b) => a.name.localeCompare(b.name));
  const rows = sorted.map((entry) => {
    const kind = entry.type === 'directory' ? 'dir ' : entry.type === 'file' ? 'file' : entry.type;
    const name = entry.type === 'directory' ? `${entry.name}/` : entry.name;
    return `${kind}\t${entry.size}\t${entry.mtime.toISOString()}\t${name}`;
  });
  return [`type\tsize\tmodified\tname (${sorted.length} entries in ${path})`, ...rows].join('\n');
}

/** Reads at most `limitBytes + 1` bytes of a file, so a huge file costs little. */
async function readHead(
  sandbox: McpSandbox,
  path: string,
  limitBytes: number,
): Promise<{ bytes: Uint8Array; complete: boolean }> {
  const reader = (await sandbox.readFileStream(path)).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size <= limitBytes) {
      const { done, value } = await reader.read();
      if (done) return { bytes: Buffer.concat(chunks), complete: true };
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return { bytes: Buffer.concat(chunks).subarray(0, limitBytes), complete: false };
}

/**
 * An MCP server whose tools run in the lease's sandbox: `run_command`, `write_file`,
 * `read_file`, `list_directory` and `sandbox_session`. Connect it to one transport (stdio, or one
 * streamable HTTP session).
 */
export function createSandboxMcpServer(
  lease: SandboxLease,
  options: SandboxMcpServerOptions = {},
): McpServer {
  const limitChars = options.outputLimitChars ?? DEFAULT_OUTPUT_LIMIT_CHARS;
  const readLimitBytes = options.readLimitBytes ?? DEFAULT_READ_LIMIT_BYTES;
  const server = new McpServer(
    { name: 'sandpool', version: options.version ?? '0.1.0' },
    { instructions: INSTRUCTIONS },
  );

  server.registerTool(
    'run_command',
    {
      title: 'Run a shell command in the sandbox',
      description:
        'Run a shell command in the isolated Linux sandbox and return its exit code, stdout and ' +
        'stderr. The command runs with /bin/sh -c (pipes, &&, redirects and globs work) as an ' +
        'unprivileged user with no network access; python3 is installed. Files persist between ' +
        'calls. A non-zero exit code is reported in the result, not as an error. Output longer ' +
        `than ${limitChars} characters per stream is shortened to its start and end.`,
      inputSchema: {
        command: z
          .string()
          .min(1)
          .describe('The shell command, for example: python3 -c "print(6*7)"'),
        timeout_seconds: z
          .number()
          .int()
          .min(1)
          .max(MAX_TIMEOUT_SECONDS)
          .optional()
          .describe(
            `Kill the command and its child processes after this many seconds; default ${DEFAULT_TIMEOUT_SECONDS}.`,
          ),
        cwd: z
          .string()
          .optional()
          .describe(`Working directory; default /home/sandboxuser. ${PATH_RULES}`),
        stdin: z.string().optional().describe('Text to feed to the command on standard input.'),
      },
      annotations: { destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    async ({ command, timeout_seconds: timeoutSeconds, cwd, stdin }) =>
      guarded(async () => {
        const sandbox = await lease.get();
        const seconds = timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
        const result = await sandbox.exec(command, { timeoutMs: seconds * 1000, cwd, stdin });
        return text(describeExecResult(result, limitChars, seconds));
      }),
  );

  server.registerTool(
    'write_file',
    {
      title: 'Write a file in the sandbox',
      description:
        'Create or overwrite a file in the sandbox with the given content; parent directories ' +
        'are created. Use it to put code in a file before running it with run_command (safer ' +
        `than echo or heredocs: nothing passes through a shell). ${PATH_RULES}`,
      inputSchema: {
        path: z.string().min(1).describe('Where to write, for example: src/main.py'),
        content: z.string().describe('The complete new content of the file.'),
        encoding: z
          .enum(['utf8', 'base64'])
          .optional()
          .describe('How content is encoded: utf8 text (default) or base64 for binary data.'),
      },
      annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async ({ path, content, encoding }) =>
      guarded(async () => {
        const sandbox = await lease.get();
        const data = encoding === 'base64' ? Buffer.from(content, 'base64') : content;
        const written = await sandbox.writeFile(path, data);
        return text(`wrote ${written.size} bytes to ${written.path}`);
      }),
  );

  server.registerTool(
    'read_file',
    {
      title: 'Read a file from the sandbox',
      description:
        'Read a file from the sandbox. Text comes back as is (long files shortened to their start ' +
        'and end; use run_command with sed -n, head, tail or grep for other parts); binary files ' +
        `need encoding "base64". ${PATH_RULES}`,
      inputSchema: {
        path: z.string().min(1).describe('The file to read, for example: results.csv'),
        encoding: z
          .enum(['utf8', 'base64'])
          .optional()
          .describe('utf8 for text (default), base64 for binary files such as images.'),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ path, encoding }) =>
      guarded(async () => {
        const sandbox = await lease.get();
        const { bytes, complete } = await readHead(sandbox, path, readLimitBytes);
        const cut = complete
          ? ''
          : `\n[only the first ${readLimitBytes} bytes were read; the file is larger]`;
        if (encoding === 'base64') return text(`${Buffer.from(bytes).toString('base64')}${cut}`);
        let decoded: string;
        try {
          decoded = new TextDecoder('utf-8', { fatal: complete }).decode(bytes);
        } catch {
          return text(
            `error: ${path} is not UTF-8 text (a binary file?); read it with encoding "base64", ` +
              'or inspect it with run_command (file, xxd | head).',
            true,
          );
        }
        if (decoded === '') return text(`(${path} is empty)`);
        return text(`${clipForModel(decoded, limitChars, path)}${cut}`);
      }),
  );

  server.registerTool(
    'list_directory',
    {
      title: 'List a directory in the sandbox',
      description:
        'List the entries of a directory in the sandbox with their type, size in bytes and ' +
        `modification time. ${PATH_RULES}`,
      inputSchema: {
        path: z
          .string()
          .optional()
          .describe('The directory to list; default the home directory /home/sandboxuser.'),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ path }) =>
      guarded(async () => {
        const sandbox = await lease.get();
        const where = path ?? '/home/sandboxuser';
        return text(describeEntries(where, await sandbox.listFiles(where)));
      }),
  );

  server.registerTool(
    'sandbox_session',
    {
      title: 'Inspect or control the sandbox session',
      description:
        'Control the sandbox this connection uses. "info": its session id and expiry. ' +
        '"keepalive": extend its life to ttl_seconds from now. "close": end it now (all its ' +
        'files are lost). "new": end it and start a fresh, empty sandbox.',
      inputSchema: {
        action: z.enum(['info', 'keepalive', 'close', 'new']).describe('What to do.'),
        ttl_seconds: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe('For "keepalive": the new lifetime from now, in seconds; default 3600.'),
      },
      annotations: { destructiveHint: true, openWorldHint: false },
    },
    async ({ action, ttl_seconds: ttlSeconds }) =>
      guarded(async () => {
        switch (action) {
          case 'info': {
            const sandbox = await lease.get();
            return text(describeSession(await sandbox.info(), lease.attached));
          }
          case 'keepalive': {
            const sandbox = await lease.get();
            const info = await sandbox.keepAlive(ttlSeconds ?? 3600);
            return text(describeSession(info, lease.attached));
          }
          case 'close': {
            const closed = await lease.closeCurrent();
            return text(
              closed === undefined
                ? 'no sandbox was open; the next command starts a new one'
                : `closed session ${closed}; the next command starts a new, empty sandbox`,
            );
          }
          case 'new': {
            const closed = await lease.closeCurrent();
            const sandbox = await lease.get();
            const note = closed === undefined ? '' : ` (closed ${closed})`;
            return text(
              `started a new, empty sandbox${note}\n${describeSession(await sandbox.info(), false)}`,
            );
          }
        }
      }),
  );

  registerRunCodeTool(server, lease, limitChars);
  registerProcessTools(server, lease, limitChars, guarded);
  return server;
}

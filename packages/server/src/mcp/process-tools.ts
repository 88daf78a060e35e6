import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describeProcessForModel } from '@sandpool/client';
import { z } from 'zod';
import type { SandboxLease } from './sandbox-lease.js';

const MAX_WAIT_SECONDS = 120;

/**
 * `start_process` and `process_output`: a model starts a server or a long job in the background,
 * keeps working, and reads its logs (and state) when it wants to.
 */
export function registerProcessTools(
  server: McpServer,
  lease: SandboxLease,
  limitChars: number,
  guarded: (run: () => Promise<CallToolResult>) => Promise<CallToolResult>,
): void {
  const text = (message: string): CallToolResult => ({
    content: [{ type: 'text', text: message }],
  });

  server.registerTool(
    'start_process',
    {
      title: 'Start a background process in the sandbox',
      description:
        'Start a long-running shell command in the background (a web server, a file watcher, a ' +
        'long build) and return at once with its pid. It keeps running between calls until it ' +
        'exits or the session ends; read its output with process_output. Use run_command for ' +
        'commands that finish. Stop it with run_command `kill -TERM -<pid>` (its process group).',
      inputSchema: {
        command: z
          .string()
          .min(1)
          .describe('The shell command, for example: python3 -m http.server 8000'),
        tag: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/)
          .optional()
          .describe('A name to refer to the process by instead of its pid, for example: web'),
        cwd: z.string().optional().describe('Working directory; default /home/sandboxuser.'),
      },
      annotations: { destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    async ({ command, tag, cwd }) =>
      guarded(async () => {
        const sandbox = await lease.get();
        const started = await sandbox.processes.start(command, { tag, cwd });
        return text(
          `started pid ${started.pid}${started.tag === null ? '' : ` (tag ${started.tag})`} at ${started.startedAt}; ` +
            'read its output with process_output',
        );
      }),
  );

  server.registerTool(
    'process_output',
    {
      title: 'Read a background process’s output and state',
      description:
        'Show whether a background process (started with start_process) still runs or how it ' +
        'exited, and its output so far (long output is shortened to its start and end). With ' +
        'wait_seconds, first wait up to that long for it to exit, collecting what it prints.',
      inputSchema: {
        process: z.string().min(1).describe('The pid (as text) or tag given by start_process.'),
        wait_seconds: z
          .number()
          .int()
          .min(0)
          .max(MAX_WAIT_SECONDS)
          .optional()
          .describe('Wait up to this many seconds for the process to exit; default 0.'),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ process, wait_seconds: waitSeconds }) =>
      guarded(async () => {
        const sandbox = await lease.get();
        return text(await describeProcessForModel(sandbox, process, limitChars, waitSeconds ?? 0));
      }),
  );
}

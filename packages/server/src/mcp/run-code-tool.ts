import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  describeExecution,
  imagesOf,
  isCorrectableByModel,
  SessionLostError,
  SessionNotFoundError,
} from '@sandpool/client';
import { z } from 'zod';
import type { SandboxLease } from './sandbox-lease.js';

const DEFAULT_TIMEOUT_SECONDS = 60;
const MAX_TIMEOUT_SECONDS = 3600;
/** Images per answer: a loop of plots should not flood the model's context. */
const MAX_IMAGES = 8;

/**
 * The `run_code` tool: a cell in the sandbox's code interpreter (an IPython kernel that keeps
 * variables between calls). Text results come back as text, figures as MCP image content.
 */
export function registerRunCodeTool(
  server: McpServer,
  lease: SandboxLease,
  limitChars: number,
): void {
  server.registerTool(
    'run_code',
    {
      title: 'Run Python (or bash) in a persistent notebook kernel',
      description:
        'Run a cell of Python code in a Jupyter (IPython) kernel inside the sandbox. Variables, ' +
        'imports and functions persist between calls, as in a notebook. The value of the last ' +
        'expression is returned, as are print output, display() calls, pandas tables and ' +
        'matplotlib figures (as images). numpy, pandas, matplotlib and scipy are installed; there ' +
        'is no network. Use language "bash" for a persistent shell. Needs a sandbox from the ' +
        'code-interpreter template.',
      inputSchema: {
        code: z
          .string()
          .min(1)
          .describe('The cell, for example: df = pd.read_csv("data.csv"); df.describe()'),
        language: z
          .enum(['python', 'bash'])
          .optional()
          .describe('python (default) or bash; each has its own persistent context.'),
        timeout_seconds: z
          .number()
          .int()
          .min(1)
          .max(MAX_TIMEOUT_SECONDS)
          .optional()
          .describe(
            `Interrupt the cell after this many seconds (variables are kept); default ${DEFAULT_TIMEOUT_SECONDS}.`,
          ),
      },
      annotations: { destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    async ({ code, language, timeout_seconds: timeoutSeconds }): Promise<CallToolResult> => {
      try {
        const sandbox = await lease.get();
        const execution = await sandbox.runCode(code, {
          language,
          timeoutMs: (timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
        });
        const images = execution.results.flatMap(imagesOf).slice(0, MAX_IMAGES);
        return {
          content: [
            { type: 'text', text: describeExecution(execution, limitChars) },
            ...images.map((image) => ({
              type: 'image' as const,
              data: image.data,
              mimeType: image.mimeType,
            })),
          ],
          ...(execution.error === undefined ? {} : { isError: true }),
        };
      } catch (error) {
        if (isCorrectableByModel(error)) {
          return { content: [{ type: 'text', text: `error: ${error.message}` }], isError: true };
        }
        if (error instanceof SessionNotFoundError || error instanceof SessionLostError) {
          return {
            content: [
              {
                type: 'text',
                text: `error: ${error.message}. The sandbox is gone, with its variables; call sandbox_session with action "new" to start a fresh one.`,
              },
            ],
            isError: true,
          };
        }
        throw error;
      }
    },
  );
}

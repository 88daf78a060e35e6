import { tool } from '@langchain/core/tools';
import { describeExecution, isCorrectableByModel, type Sandbox } from '@sandpool/client';
import { z } from 'zod';

/** Largest timeout a model may ask for, in seconds (10 minutes). */
const MAX_TIMEOUT_SECONDS = 600;

const runCodeSchema = z.object({
  code: z
    .string()
    .min(1)
    .describe(
      'A cell of Python code. Variables and imports persist between calls, as in a notebook.',
    ),
  language: z
    .enum(['python', 'bash'])
    .optional()
    .describe('python (default) or bash; each keeps its own state.'),
  timeout_seconds: z
    .number()
    .int()
    .min(1)
    .max(MAX_TIMEOUT_SECONDS)
    .optional()
    .describe('Interrupt the cell after this many seconds (variables are kept); default 60.'),
});

/**
 * The `run_code` tool: a cell in the sandbox's code interpreter (a Jupyter kernel). Its answer
 * is text a model can read: stdout, the results' text, the error and traceback, and one line per
 * figure (its kind and size; the base64 stays out of the context window). The sandbox needs the
 * `code-interpreter` template.
 */
export function createRunCodeTool(sandbox: Sandbox, limitChars: number, defaultTimeoutMs: number) {
  return tool(
    async ({ code, language, timeout_seconds: seconds }) => {
      try {
        const execution = await sandbox.runCode(code, {
          language,
          timeoutMs: seconds === undefined ? defaultTimeoutMs : seconds * 1000,
        });
        return describeExecution(execution, limitChars);
      } catch (error) {
        if (isCorrectableByModel(error)) return `error: ${error.message}`;
        throw error;
      }
    },
    {
      name: 'run_code',
      description:
        'Run Python in a persistent Jupyter kernel in an isolated sandbox (numpy, pandas, ' +
        'matplotlib, scipy; no network) and get the value of the last expression, printed ' +
        'output, tables and a description of each figure. Errors come back with their traceback.',
      schema: runCodeSchema,
    },
  );
}

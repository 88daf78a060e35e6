import { clipForModel } from './model-text.js';
import type { Processes } from './processes.js';

/**
 * What a model reads of a background process (MCP's and LangChain's `process_output`): its state
 * and the output kept so far, shortened to `limitChars`. With `waitSeconds`, it first waits up to
 * that long for the process to exit, gathering what it writes meanwhile.
 */
export async function describeProcessForModel(
  sandbox: { readonly processes: Pick<Processes, 'output' | 'get'> },
  pidOrTag: number | string,
  limitChars: number,
  waitSeconds = 0,
): Promise<string> {
  let text = '';
  let dropped = 0;
  const signal = waitSeconds > 0 ? AbortSignal.timeout(waitSeconds * 1000) : undefined;
  try {
    for await (const event of sandbox.processes.output(pidOrTag, {
      follow: waitSeconds > 0,
      signal,
    })) {
      if (event.type === 'stdout' || event.type === 'stderr') text += event.data;
      else if (event.type === 'truncated') dropped += event.droppedBytes;
    }
  } catch (error) {
    if (signal?.aborted !== true) throw error;
  }
  const info = await sandbox.processes.get(pidOrTag);
  const state = info.running
    ? `running (pid ${info.pid}${info.tag === null ? '' : `, tag ${info.tag}`}, since ${info.startedAt})`
    : `exited with code ${info.exitCode ?? 'unknown'}${info.timedOut ? ' (killed at its timeout)' : ''}`;
  const lines = [`process: ${info.command}`, `state: ${state}`];
  if (dropped > 0) lines.push(`(${dropped} earlier bytes of output were dropped)`);
  lines.push(
    text === '' ? 'output: (none yet)' : `output:\n${clipForModel(text, limitChars, 'output')}`,
  );
  return lines.join('\n');
}

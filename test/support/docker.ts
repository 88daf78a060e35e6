import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Ids of containers carrying this worker's label, read with the docker CLI (an independent view). */
export async function containersOf(workerId: string): Promise<string[]> {
  const { stdout } = await run('docker', [
    'ps',
    '-aq',
    '--filter',
    `label=sandpool.worker=${workerId}`,
  ]);
  return stdout.split('\n').filter(Boolean);
}

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args);
  return stdout;
}

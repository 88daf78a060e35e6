import { spawn, type SpawnOptions } from 'node:child_process';

/** What a finished process left: its exit code and everything it printed. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end, feeding `input` to its stdin, and collects its output. */
export function runProcess(
  command: string,
  args: string[],
  options: SpawnOptions = {},
  input = '',
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin?.end(input);
  });
}

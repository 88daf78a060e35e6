import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../packages/server/src/cli/main.ts', import.meta.url));

/** `sandpool <args>` run from source as a child process, until it prints its listening line. */
export class SandpoolProcess {
  private output = '';

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(args: string[], env: Record<string, string> = {}): Promise<SandpoolProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      // Only `base` unless a test asks for more: a warm code interpreter in every test worker
      // would cost each test file a kernel start.
      env: { SANDPOOL_TEMPLATES: 'base', ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const deadline = Date.now() + 60_000;
    let url: string | undefined;
    while (!url) {
      url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (url) break;
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`sandpool ${args.join(' ')} did not start:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const started = new SandpoolProcess(child, url);
    started.output = output;
    child.stdout.on('data', (c: Buffer) => (started.output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (started.output += c.toString()));
    return started;
  }

  get log(): string {
    return this.output;
  }

  /** Sends the signal and waits for the exit; resolves to the exit code (null after a kill). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = once(this.child, 'exit') as Promise<[number | null]>;
    this.child.kill(signal);
    const [code] = await exited;
    return code;
  }
}

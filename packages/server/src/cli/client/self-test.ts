import { Sandbox, type ConnectionOptions } from '@sandpool/client';

/** One step of `sandpool test` and how it went. */
export interface SelfTestStep {
  /** What the step checks. */
  name: string;
  /** Whether it passed; `undefined` when it was skipped because an earlier step failed. */
  ok: boolean | undefined;
  /** How long it took, in milliseconds. */
  durationMs: number;
  /** What it saw, or why it failed. */
  detail: string;
}

const SCRIPT_PATH = 'sandpool_selftest.py';
const SCRIPT = [
  'import platform, os',
  'print(f"python {platform.python_version()} as uid {os.getuid()}: {sum(range(10))}")',
  '',
].join('\n');

class StepFailed extends Error {}

function expect(condition: boolean, message: string): void {
  if (!condition) throw new StepFailed(message);
}

/**
 * The seed's self-test against a live server: open a session, check that commands run as
 * `sandboxuser` (not root), read python3's version, upload a script and run it, run a batch,
 * and close the session. Every step is reported as it ends; the session is closed even when a
 * step fails.
 */
export async function runSelfTest(
  /** `template` picks the session's template (default `base`). */
  connection: ConnectionOptions & { template?: string },
  onStep: (step: SelfTestStep) => void,
): Promise<SelfTestStep[]> {
  const steps: SelfTestStep[] = [];
  let sandbox: Sandbox | undefined;
  let failed = false;

  const step = async (name: string, body: () => Promise<string>): Promise<void> => {
    if (failed && sandbox === undefined) {
      record({ name, ok: undefined, durationMs: 0, detail: 'skipped: no session' });
      return;
    }
    const started = performance.now();
    try {
      const detail = await body();
      record({ name, ok: true, durationMs: elapsed(started), detail });
    } catch (error) {
      failed = true;
      const detail = error instanceof Error ? error.message : String(error);
      record({ name, ok: false, durationMs: elapsed(started), detail });
    }
  };
  const box = (): Sandbox => {
    if (sandbox === undefined) throw new StepFailed('no session');
    return sandbox;
  };
  const record = (result: SelfTestStep): void => {
    steps.push(result);
    onStep(result);
  };

  await step('create session', async () => {
    sandbox = await Sandbox.create({ ...connection, metadata: { created_by: 'sandpool test' } });
    return `session ${sandbox.sessionId.slice(0, 12)}… on worker ${sandbox.workerId}`;
  });
  await step('run as non-root user', async () => {
    const result = await box().exec('whoami; id -u');
    const [user = '', uid = ''] = result.stdout.trim().split('\n');
    expect(result.exitCode === 0, `whoami exited ${result.exitCode}: ${result.stderr.trim()}`);
    expect(uid.trim() !== '0', `commands run as root (${user}); the sandbox is not hardened`);
    return `user ${user} (uid ${uid.trim()}), not root`;
  });
  await step('python3 version', async () => {
    const result = await box().exec(['python3', '--version']);
    const version = (result.stdout + result.stderr).trim();
    expect(result.exitCode === 0, `python3 --version exited ${result.exitCode}: ${version}`);
    return version;
  });
  await step('upload and run a script', async () => {
    const written = await box().writeFile(SCRIPT_PATH, SCRIPT);
    const result = await box().exec(['python3', SCRIPT_PATH]);
    expect(result.exitCode === 0, `the script exited ${result.exitCode}: ${result.stderr.trim()}`);
    expect(result.stdout.includes(': 45'), `unexpected output: ${result.stdout.trim()}`);
    return `${written.path} (${written.size} bytes) printed "${result.stdout.trim()}"`;
  });
  await step('run a batch', async () => {
    const commands = ['echo step 1', 'python3 -c "print(6 * 7)"', `test -f ${SCRIPT_PATH}`];
    const results = await box().execBatch(commands, { stopOnError: true });
    const bad = results.findIndex((r) => r.exitCode !== 0);
    expect(bad === -1, `"${commands[bad]}" exited ${results[bad]?.exitCode}`);
    expect(results.length === commands.length, 'the batch stopped early');
    expect(results[1]?.stdout.trim() === '42', `python printed ${results[1]?.stdout.trim()}`);
    return `${results.length} commands, all exit 0`;
  });
  await step('close session', async () => {
    if (sandbox === undefined) return 'nothing to close';
    await sandbox.close();
    return 'container destroyed';
  });
  return steps;
}

function elapsed(startedMs: number): number {
  return Math.round(performance.now() - startedMs);
}

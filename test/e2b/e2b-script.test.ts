import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { codeInterpreterImage } from '../support/code-image.js';
import { containersOf } from '../support/docker.js';
import { TestRedis } from '../support/redis-server.js';
import { runProcess } from '../support/run-process.js';
import { SandpoolProcess } from '../support/sandpool-process.js';

// Issue 13's "done when": a script written for E2B (examples/e2b-script.ts: create, a command, a
// file written and read, code that plots, a terminal, a web server reached through getHost, kill)
// runs unchanged against `sandpool serve` and against `sandpool coordinator`, with only the three
// E2B variables in its environment. Needs the Connect RPC routes ("connect") and the preview
// tunnel ("ports") merged beside the E2B face.

const SCRIPT = fileURLToPath(new URL('../../examples/e2b-script.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const API_KEY = randomBytes(16).toString('hex');

interface Summary {
  command: string;
  file: string;
  png: boolean;
  terminal: boolean;
  terminalSize: boolean;
  web: string;
}

/** Runs the script with nothing of sandpool in its environment but the E2B variables. */
async function runScript(server: string): Promise<Summary> {
  const run = await runProcess(process.execPath, ['--import', 'tsx', SCRIPT], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      E2B_API_URL: `${server}/e2b`,
      E2B_SANDBOX_URL: `${server}/e2b/sandbox`,
      E2B_API_KEY: API_KEY,
    },
  });
  assert.equal(run.code, 0, `the script failed:\n${run.stdout}\n${run.stderr}`);
  const last = run.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as Summary;
}

function check(summary: Summary): void {
  assert.equal(summary.command, 'hello from sandboxuser');
  assert.equal(summary.file, 'written through the E2B SDK\n');
  assert.equal(summary.png, true);
  assert.equal(summary.terminal, true);
  assert.equal(summary.terminalSize, true);
  assert.equal(summary.web, 'written through the E2B SDK\n');
}

describe('an E2B script, unchanged, against a worker and a coordinator', () => {
  let redis: TestRedis;
  let worker: SandpoolProcess;
  let coordinator: SandpoolProcess;
  const workerId = `e2b-script-${randomBytes(3).toString('hex')}`;

  before(async () => {
    redis = await TestRedis.start();
    const key = { SANDPOOL_API_KEY: API_KEY };
    [worker, coordinator] = await Promise.all([
      SandpoolProcess.start(
        [
          'serve',
          '--port',
          '0',
          '--templates',
          `code-interpreter=1@${await codeInterpreterImage()}`,
          '--worker-id',
          workerId,
          '--redis',
          redis.url,
          '--heartbeat-interval-ms',
          '500',
          '--log-level',
          'warn',
        ],
        key,
      ),
      SandpoolProcess.start(
        ['coordinator', '--port', '0', '--redis', redis.url, '--log-level', 'warn'],
        key,
      ),
    ]);
    assert.match(worker.log, /E2B_API_URL=http:\/\/\S+\/e2b\n/);
    assert.match(coordinator.log, /E2B_SANDBOX_URL=http:\/\/\S+\/e2b\/sandbox\n/);
    for (let i = 0; i < 150; i++) {
      const health = (await (await fetch(`${coordinator.url}/health`)).json()) as {
        workers?: { healthy: boolean }[];
      };
      if (health.workers?.some((w) => w.healthy)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    await coordinator?.stop('SIGTERM');
    await worker?.stop('SIGTERM');
    await redis?.stop();
    assert.deepEqual(await containersOf(workerId), []);
  });

  test('against the worker', async () => {
    check(await runScript(worker.url));
  });

  test('against the coordinator', async () => {
    check(await runScript(coordinator.url));
  });
});

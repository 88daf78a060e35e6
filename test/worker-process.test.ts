import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { call } from './support/http.js';
import { containersOf } from './support/docker.js';
import { until } from './support/until.js';

const CLI = fileURLToPath(new URL('../packages/server/src/cli/main.ts', import.meta.url));

/** Runs `sandpool <args>` from source, as `npx sandpool` would from the build. */
function sandpool(args: string[], env: Record<string, string> = {}) {
  return spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    // `base` alone, as before templates: the container counts below are base's.
    env: { SANDPOOL_TEMPLATES: 'base', ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe('sandpool serve as a process', () => {
  test('warms the pool with progress lines, serves, and on SIGTERM removes everything and exits 0', async () => {
    const workerId = `proc-${randomBytes(3).toString('hex')}`;
    const child = sandpool([
      'serve',
      '--port',
      '0',
      '--pool-size',
      '2',
      '--worker-id',
      workerId,
      '--log-level',
      'warn',
    ]);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.resume(); // never let a full pipe stall the worker
    const exited = once(child, 'exit') as Promise<[number | null]>;
    try {
      let url = '';
      for (let i = 0; i < 300 && !url; i++) {
        url = /listening on (http:\/\/\S+)/.exec(out)?.[1] ?? '';
        if (!url) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(url, `no listening line in: ${out}`);
      assert.match(out, /container 1\/2 ready/);
      assert.match(out, /container 2\/2 ready/);
      assert.match(out, /pool ready: 2 container\(s\)/);
      const created = await call(url, 'POST', '/create_session');
      assert.equal(created.status, 201);
      // The session's container, and the pool refilled behind it.
      await until(async () => (await containersOf(workerId)).length === 3, 15_000, 'pool refill');

      child.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 0);
      assert.deepEqual(await containersOf(workerId), []);
    } finally {
      // A failed assertion must not leave the worker running (and this test waiting on it).
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    }
  });

  test('refuses a non-loopback address without an API key, with a message saying what to do', async () => {
    const child = sandpool(['serve', '--host', '0.0.0.0', '--port', '0'], { SANDPOOL_API_KEY: '' });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 1);
    assert.match(err, /SANDPOOL_API_KEY/);
    assert.match(err, /--allow-insecure-bind/);
  });

  test('rejects bad settings with one clear line', async () => {
    const child = sandpool(['serve', '--pool-size', 'many']);
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 1);
    assert.match(err, /--pool-size \/ SANDPOOL_POOL_SIZE must be a whole number/);
  });
});

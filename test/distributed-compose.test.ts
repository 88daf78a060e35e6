import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const COMPOSE_FILE = fileURLToPath(new URL('../deploy/docker-compose.yml', import.meta.url));

function composeInstalled(): boolean {
  try {
    execFileSync('docker-compose', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = composeInstalled()
  ? false
  : 'docker-compose is not installed (apt-get install docker-compose)';

test(
  'deploy/docker-compose.yml: Redis, a coordinator and three workers; only workers get the Docker socket',
  { skip },
  async () => {
    const env = { ...process.env, SANDPOOL_API_KEY: 'ci-placeholder-key-0000' };
    const services = await run('docker-compose', ['-f', COMPOSE_FILE, 'config', '--services'], {
      env,
    });
    assert.deepEqual(services.stdout.trim().split('\n').sort(), [
      'coordinator',
      'redis',
      'worker1',
      'worker2',
      'worker3',
    ]);
    const { stdout } = await run('docker-compose', ['-f', COMPOSE_FILE, 'config'], { env });
    // Split the rendered file into its services (two-space indented keys under `services:`).
    const body = stdout.slice(stdout.indexOf('\nservices:\n'));
    const blocks = new Map<string, string>();
    for (const part of body.split(/\n {2}(?=[a-z0-9]+:\n)/).slice(1)) {
      blocks.set(part.slice(0, part.indexOf(':')), part);
    }
    assert.equal(blocks.size, 5, [...blocks.keys()].join(','));
    for (const [name, block] of blocks) {
      const mountsSocket = block.includes('/var/run/docker.sock');
      assert.equal(mountsSocket, name.startsWith('worker'), `${name} and the Docker socket`);
    }
    for (const n of [1, 2, 3]) {
      const block = blocks.get(`worker${n}`) ?? '';
      assert.match(block, new RegExp(`SANDPOOL_WORKER_ID: worker${n}`));
      assert.match(block, new RegExp(`SANDPOOL_ADVERTISE_URL: http://worker${n}:5000`));
      assert.match(block, /SANDPOOL_REDIS_URL: redis:\/\/redis:6379/);
    }
    assert.match(blocks.get('coordinator') ?? '', /127\.0\.0\.1:8000:8000/);
  },
);

test('deploy/docker-compose.yml refuses to render without an API key', { skip }, async () => {
  const env = { ...process.env, SANDPOOL_API_KEY: '' };
  await assert.rejects(
    run('docker-compose', ['-f', COMPOSE_FILE, 'config'], { env }),
    /set SANDPOOL_API_KEY/,
  );
});

// CPython's own regression suite, run inside a session: the modules that make sense in a
// sandbox (processes, files, mmap, terminals, temp files) must pass under the hardened defaults.
// They come from Debian's libpython3.11-testsuite, installed in a test-only image derived from
// the sandbox image (the sandbox image itself stays lean).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { containersOf } from './support/docker.js';
import { call, createSession, exec } from './support/http.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

const run = promisify(execFile);
const BASE = process.env.SANDPOOL_IMAGE ?? 'sandpool/sandbox:latest';

/** Modules that exercise what a sandbox user does; network-bound ones (test_socket) are not here. */
const MODULES = [
  'test_subprocess',
  'test_shutil',
  'test_mmap',
  'test_tempfile',
  'test_glob',
  'test_pathlib',
  'test_fcntl',
  'test_select',
  'test_pty',
  'test_json',
  'test_tarfile',
];

/**
 * Builds (once per base image) `sandpool/sandbox-pytests:<base id>`: the base plus the suite.
 * Returns undefined with the build's output when Debian's archive cannot be reached.
 */
async function testImage(): Promise<{ tag: string } | { skip: string }> {
  const { stdout } = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', BASE]);
  const tag = `sandpool/sandbox-pytests:${stdout.trim().replace('sha256:', '').slice(0, 12)}`;
  const present = await run('docker', ['image', 'inspect', tag]).then(
    () => true,
    () => false,
  );
  if (present) return { tag };
  const dockerfile = [
    `FROM ${BASE}`,
    'USER root',
    'RUN apt-get update && apt-get install -y --no-install-recommends libpython3.11-testsuite && rm -rf /var/lib/apt/lists/*',
    'USER 1000:1000',
  ].join('\n');
  const build = spawn('docker', ['build', '-t', tag, '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  build.stdout.on('data', (c: Buffer) => (output += c.toString()));
  build.stderr.on('data', (c: Buffer) => (output += c.toString()));
  build.stdin.end(dockerfile);
  const code = await new Promise<number | null>((resolve) => build.on('close', resolve));
  if (code !== 0) return { skip: `could not build the suite image: ${output.slice(-400)}` };
  return { tag };
}

describe('CPython regression suite inside a session', { timeout: 900_000 }, async () => {
  const image = await testImage();
  let w: TestWorker | undefined;
  before(async () => {
    if (!('tag' in image)) return;
    w = await startWorker({
      image: image.tag,
      poolSize: 1,
      cpus: 1,
      execTimeoutMs: 600_000,
    });
  });
  after(async () => {
    if (!w) return;
    await w.close();
    assert.deepEqual(await containersOf(w.workerId), []);
  });

  test(
    `${MODULES.length} modules pass under the sandbox's defaults`,
    { skip: 'skip' in image ? image.skip : false },
    async () => {
      assert.ok(w);
      const id = await createSession(w.url);
      const result = await exec(w.url, id, {
        command: `python3 -m test --timeout 300 ${MODULES.join(' ')} 2>&1 | tail -40`,
        timeout_ms: 600_000,
      });
      assert.match(result.stdout, /Tests result: SUCCESS/, result.stdout);
      assert.match(result.stdout, new RegExp(`All ${MODULES.length} tests OK`), result.stdout);
      await call(w.url, 'DELETE', `/v1/sessions/${id}`);
    },
  );
});

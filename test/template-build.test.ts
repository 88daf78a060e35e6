import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { call, exec } from './support/http.js';
import { containersOf, docker } from './support/docker.js';
import { startWorker } from './support/worker-harness.js';

/**
 * `sandpool template build` with a Dockerfile that starts FROM an image that is not the
 * foundation (a plain Debian with a uid-1000 user of its own and an entrypoint): the build adds
 * the sandbox user, the agent and the defaults, a worker pools it, and a second build is a no-op.
 */

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../packages/server/src/cli/main.ts', import.meta.url));
const FOUNDATION = process.env.SANDPOOL_TEST_FOUNDATION_IMAGE ?? 'sandpool/foundation:latest';
const id = randomBytes(3).toString('hex');
const TAG = `sandpool/template-anyimage:test-${id}`;

/** A plain Debian on this engine: the public one, or the local debootstrap base. */
async function plainDebian(): Promise<string | undefined> {
  for (const image of ['debian:bookworm-slim', 'sandpool/debian-base:bookworm']) {
    const found = await docker('image', 'inspect', image).then(
      () => true,
      () => false,
    );
    if (found) return image;
  }
  return undefined;
}

async function templateBuild(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', CLI, 'template', 'build', ...args], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 8 * 60_000,
  });
}

describe('a template FROM any image', () => {
  let dir: string;
  let from: string | undefined;

  before(async () => {
    from = await plainDebian();
    dir = await mkdtemp(path.join(tmpdir(), 'sandpool-anyimage-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
    // Only the tags this test made; layers shared with other images stay.
    await docker('rmi', TAG, `${TAG}-stage`).catch(() => undefined);
  });

  test(
    'gets the agent, the sandbox user and the defaults; builds once',
    { timeout: 10 * 60_000 },
    async (t) => {
      if (from === undefined) {
        t.skip('no plain Debian image on this engine');
        return;
      }
      const dockerfile = path.join(dir, 'Custom.Dockerfile');
      await writeFile(
        dockerfile,
        [
          `FROM ${from}`,
          // uid 1000 taken by another name, an entrypoint, and a non-root user at the end: all of
          // which the foundation's layers must cope with.
          'RUN groupadd --gid 1000 builder && useradd --uid 1000 --gid 1000 --no-create-home builder',
          'RUN echo from-any-image > /etc/anyimage-marker',
          'ENTRYPOINT ["/bin/false"]',
          'USER builder',
          '',
        ].join('\n'),
      );
      const built = await templateBuild(
        'anyimage',
        '--dockerfile',
        dockerfile,
        '--tag',
        TAG,
        '--foundation-tag',
        FOUNDATION,
      );
      assert.match(built.stdout, new RegExp(`template anyimage: image ${TAG} ready`));
      assert.match(built.stderr, /adding the sandbox user and the agent to anyimage/);

      const labels = JSON.parse(
        await docker('image', 'inspect', '--format', '{{json .Config.Labels}}', TAG),
      ) as Record<string, string>;
      assert.equal(labels['sandpool.agent'], '1');
      assert.equal(labels['sandpool.template'], 'anyimage');
      assert.match(labels['sandpool.input-hash'] ?? '', /^[0-9a-f]{64}$/);

      const again = await templateBuild(
        'anyimage',
        '--dockerfile',
        dockerfile,
        '--tag',
        TAG,
        '--foundation-tag',
        FOUNDATION,
      );
      assert.match(again.stdout, new RegExp(`template anyimage: image ${TAG} up to date`));

      const w = await startWorker({ templates: `anyimage=1@${TAG}` });
      try {
        const created = await call<{ session_id: string; template: string }>(
          w.url,
          'POST',
          '/v1/sessions',
          { template: 'anyimage' },
        );
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const result = await exec(w.url, created.body.session_id, {
          command: 'cat /etc/anyimage-marker; id -u; echo "$HOME"; pwd',
        });
        assert.equal(result.exit_code, 0, result.stderr);
        assert.equal(result.stdout, 'from-any-image\n1000\n/home/sandboxuser\n/home/sandboxuser\n');
      } finally {
        await w.close();
        assert.deepEqual(await containersOf(w.workerId), []);
      }
    },
  );

  test('a name that is not a template name is refused before anything is built', async () => {
    await assert.rejects(templateBuild('Bad_Name', '--dockerfile', '/nonexistent'), (error) => {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      assert.match(stderr, /template name "Bad_Name" must be/);
      return true;
    });
  });
});

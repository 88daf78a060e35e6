import assert from 'node:assert/strict';
import { chmod, mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import {
  DockerImageBuilder,
  INPUT_HASH_LABEL,
  computeInputHash,
  listContextFiles,
  localBaseHash,
  readPackageList,
} from './docker-image-builder.js';

const BASE_ID = 'sha256:0000000000000000000000000000000000000000000000000000000000000000';

void describe('computeInputHash', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sandpool-hash-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function freshContext(name: string): Promise<string> {
    const context = path.join(dir, name);
    await mkdir(path.join(context, 'agent'), { recursive: true });
    await writeFile(path.join(context, 'Dockerfile'), 'FROM scratch\n');
    await writeFile(path.join(context, 'agent', 'main.js'), 'console.log(1)\n');
    return context;
  }

  void it('is stable for the same files and base', async () => {
    const context = await freshContext('stable');
    const first = await computeInputHash(context, BASE_ID);
    assert.match(first, /^[0-9a-f]{64}$/);
    assert.equal(await computeInputHash(context, BASE_ID), first);
    // Same contents in another directory: the location is not an input.
    assert.equal(await computeInputHash(await freshContext('copy'), BASE_ID), first);
  });

  void it('changes when a file, a name, a mode, a link or the base changes', async () => {
    const context = await freshContext('changes');
    const seen = new Set([await computeInputHash(context, BASE_ID)]);
    const expectNew = async (what: string, baseId = BASE_ID): Promise<void> => {
      const hash = await computeInputHash(context, baseId);
      assert.ok(!seen.has(hash), `hash did not change after ${what}`);
      seen.add(hash);
    };

    await writeFile(path.join(context, 'agent', 'main.js'), 'console.log(2)\n');
    await expectNew('editing a file');
    await writeFile(path.join(context, 'extra.txt'), '');
    await expectNew('adding an empty file');
    await chmod(path.join(context, 'extra.txt'), 0o755);
    await expectNew('making a file executable');
    await symlink('agent/main.js', path.join(context, 'link'));
    await expectNew('adding a symlink');
    await expectNew('changing the base', BASE_ID.replace(/0$/, '1'));
  });

  void it('does not mix up file boundaries', async () => {
    const a = path.join(dir, 'boundary-a');
    const b = path.join(dir, 'boundary-b');
    await mkdir(a);
    await mkdir(b);
    await writeFile(path.join(a, 'x'), 'ab');
    await writeFile(path.join(a, 'y'), '');
    await writeFile(path.join(b, 'x'), 'a');
    await writeFile(path.join(b, 'y'), 'b');
    assert.notEqual(await computeInputHash(a, BASE_ID), await computeInputHash(b, BASE_ID));
  });

  void it('lists files sorted with forward slashes', async () => {
    const context = await freshContext('listing');
    assert.deepEqual(await listContextFiles(context), ['Dockerfile', 'agent/main.js']);
  });
});

void describe('package list', () => {
  void it('reads names and skips comments and blank lines', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sandpool-packages-'));
    try {
      await writeFile(path.join(dir, 'packages.txt'), '# tools\nbash\n\npython3  # the runtime\n');
      assert.deepEqual(await readPackageList(dir), ['bash', 'python3']);
      await writeFile(path.join(dir, 'packages.txt'), 'bash\n--evil\n');
      await assert.rejects(readPackageList(dir), /not a package name/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void it('hashes the recipe independent of order', () => {
    assert.equal(localBaseHash(['bash', 'jq']), localBaseHash(['jq', 'bash']));
    assert.notEqual(localBaseHash(['bash', 'jq']), localBaseHash(['bash']));
  });
});

// Against the real engine: builds the sandbox image, or finds it up to date (after provisioning).
void describe('DockerImageBuilder against the Docker engine', () => {
  const contextDir = fileURLToPath(new URL('../../../../../images/foundation/', import.meta.url));

  void it(
    'builds or finds the foundation layer (sandpool/foundation:latest) with its input hash',
    { timeout: 15 * 60_000 },
    async () => {
      const docker = new Docker();
      const builder = new DockerImageBuilder(docker, (line) => console.error(`  ${line}`));
      const result = await builder.build({ contextDir });
      assert.equal(result.tag, 'sandpool/foundation:latest');
      assert.match(result.inputHash, /^[0-9a-f]{64}$/);
      const info = await docker.getImage(result.tag).inspect();
      assert.equal(info.Config.Labels[INPUT_HASH_LABEL], result.inputHash);
      assert.equal(info.Config.User, '1000:1000');

      // A second build with nothing changed must not rebuild.
      const again = await builder.build({ contextDir });
      assert.equal(again.built, false);
      assert.equal(again.inputHash, result.inputHash);
    },
  );
});

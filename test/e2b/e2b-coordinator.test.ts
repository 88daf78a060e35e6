import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox as CodeSandbox } from '@e2b/code-interpreter';
import { AuthenticationError, FileNotFoundError, Sandbox, SandboxNotFoundError } from 'e2b';
import { codeInterpreterImage } from '../support/code-image.js';
import { containersOf } from '../support/docker.js';
import { startCluster, type TestCluster } from '../support/cluster-harness.js';
import { useE2bServer } from './e2b-env.js';

// E2B's faces through a coordinator (Redis, a worker behind it): the control plane placed and
// routed like sandpool's own sessions, the sandbox scope proxied to the owning worker, streamed.
// The published SDKs, unmodified, configured by the environment only.

const API_KEY = 'e2b-coordinator-test-key';

describe('E2B through a coordinator', () => {
  let cluster: TestCluster;
  let url: string;

  before(async () => {
    cluster = await startCluster(
      { templates: `base=1,code-interpreter=1@${await codeInterpreterImage()}` },
      API_KEY,
    );
    url = cluster.url;
    useE2bServer(url, API_KEY);
  });

  after(async () => {
    await cluster?.close();
    assert.deepEqual(await containersOf(cluster.worker.workerId), []);
  });

  test('control plane: create, getInfo, list, setTimeout, connect, kill', async () => {
    const sandbox = await Sandbox.create({ metadata: { via: 'coordinator' }, timeoutMs: 60_000 });
    try {
      const port = new URL(url).port;
      assert.equal(sandbox.getHost(3000), `3000-${sandbox.sandboxId}.localhost:${port}`);
      const info = await sandbox.getInfo();
      assert.equal(info.templateId, 'base');
      assert.equal(info.sandboxDomain, `localhost:${port}`);
      assert.ok(info.memoryMB > 0);
      const listed = await Sandbox.list({
        query: { metadata: { via: 'coordinator' } },
      }).nextItems();
      assert.deepEqual(
        listed.map((s) => s.sandboxId),
        [sandbox.sandboxId],
      );
      await sandbox.setTimeout(300_000);
      assert.ok((await sandbox.getInfo()).endAt.getTime() - Date.now() > 290_000);
      const again = await Sandbox.connect(sandbox.sandboxId);
      assert.equal(await again.isRunning(), true);

      // The sandbox scope, proxied: files both ways, errors in the SDK's classes.
      await sandbox.files.write([
        { path: 'one.txt', data: '1' },
        { path: 'two.bin', data: new Uint8Array([0, 1, 2, 255]).buffer },
      ]);
      assert.equal(await again.files.read('one.txt'), '1');
      assert.deepEqual(
        [...(await sandbox.files.read('two.bin', { format: 'bytes' }))],
        [0, 1, 2, 255],
      );
      await assert.rejects(sandbox.files.read('nothing-here'), FileNotFoundError);
    } finally {
      assert.equal(await sandbox.kill(), true);
    }
    assert.equal(await sandbox.isRunning(), false);
    assert.equal(await Sandbox.kill(sandbox.sandboxId), false);
  });

  test('code interpreter through the coordinator: streamed output and state', async () => {
    const code = await CodeSandbox.create({ timeoutMs: 60_000 });
    try {
      const lines: string[] = [];
      await code.runCode('n = 5', { onStdout: (m) => void lines.push(m.line) });
      const result = await code.runCode('for i in range(n): print(i)\nn * 2', {
        onStdout: (m) => void lines.push(m.line),
      });
      assert.equal(result.text, '10');
      assert.equal(lines.join(''), '0\n1\n2\n3\n4\n');
      const context = await code.createCodeContext();
      assert.ok((await code.listCodeContexts()).some((c) => c.id === context.id));
    } finally {
      await code.kill();
    }
  });

  test('refusals through the coordinator keep E2B’s statuses', async () => {
    await assert.rejects(Sandbox.create({ apiKey: 'wrong' }), AuthenticationError);
    await assert.rejects(Sandbox.create('no-such-template'), /404: No worker serves template/);
    await assert.rejects(Sandbox.connect('no-such-sandbox'), SandboxNotFoundError);
  });

  test('the sandbox scope through the coordinator needs the sandbox’s token', async () => {
    const sandbox = await Sandbox.create({ timeoutMs: 60_000 });
    try {
      const headers = { 'E2b-Sandbox-Id': sandbox.sandboxId, 'E2b-Sandbox-Port': '49983' };
      const refused = await fetch(`${url}/e2b/sandbox/files?path=x`, {
        headers: { ...headers, 'X-API-KEY': API_KEY, Authorization: `Bearer ${API_KEY}` },
      });
      assert.equal(refused.status, 401);
      const unknown = await fetch(`${url}/e2b/sandbox/health`, {
        headers: { ...headers, 'E2b-Sandbox-Id': 'no-such-sandbox' },
      });
      assert.equal(unknown.status, 502);
    } finally {
      await sandbox.kill();
    }
  });
});

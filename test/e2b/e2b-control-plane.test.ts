import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthenticationError, Sandbox, SandboxError, SandboxNotFoundError } from 'e2b';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { useE2bServer } from './e2b-env.js';

// E2B's control plane and sandbox scope on a real worker, driven by the published `e2b` SDK,
// unmodified, configured by the three environment variables only.

describe('E2B control plane on a worker', () => {
  let worker: TestWorker;
  const apiKey = 'e2b-control-plane-test-key';

  before(async () => {
    worker = await startWorker({ poolSize: 1, apiKey });
    useE2bServer(worker.url, apiKey);
  });

  after(async () => {
    await worker?.close();
  });

  test('create, getInfo, list, setTimeout, isRunning, kill', async () => {
    const sandbox = await Sandbox.create({
      metadata: { suite: 'control-plane' },
      timeoutMs: 120_000,
    });
    try {
      assert.ok(sandbox.sandboxId.length > 0);
      assert.equal(await sandbox.isRunning(), true);

      const info = await sandbox.getInfo();
      assert.equal(info.sandboxId, sandbox.sandboxId);
      assert.equal(info.templateId, 'base');
      assert.deepEqual(info.metadata, { suite: 'control-plane' });
      assert.equal(info.state, 'running');
      const lifeMs = info.endAt.getTime() - info.startedAt.getTime();
      assert.ok(lifeMs > 110_000 && lifeMs <= 121_000, `life ${lifeMs} ms`);

      await sandbox.setTimeout(600_000);
      const extended = await sandbox.getInfo();
      assert.ok(extended.endAt.getTime() - Date.now() > 590_000);

      const listed = await Sandbox.list({
        query: { metadata: { suite: 'control-plane' } },
      }).nextItems();
      assert.deepEqual(
        listed.map((s) => s.sandboxId),
        [sandbox.sandboxId],
      );
      const none = await Sandbox.list({ query: { metadata: { suite: 'other' } } }).nextItems();
      assert.equal(none.length, 0);

      // Paging: one sandbox a page, the next page named by x-next-token.
      const second = await Sandbox.create({ metadata: { suite: 'control-plane' } });
      try {
        const pages = Sandbox.list({ limit: 1, query: { metadata: { suite: 'control-plane' } } });
        const seen: string[] = [];
        while (pages.hasNext) seen.push(...(await pages.nextItems()).map((s) => s.sandboxId));
        assert.deepEqual(seen, [second.sandboxId, sandbox.sandboxId]);
      } finally {
        await second.kill();
      }

      const again = await Sandbox.connect(sandbox.sandboxId);
      assert.equal(await again.isRunning(), true);
    } finally {
      assert.equal(await sandbox.kill(), true);
    }
    assert.equal(await sandbox.isRunning(), false);
    assert.equal(await Sandbox.kill(sandbox.sandboxId), false);
    await assert.rejects(sandbox.getInfo(), SandboxNotFoundError);
  });

  test('the sandbox scope needs the sandbox’s own token; the API key needs to be right', async () => {
    const sandbox = await Sandbox.create({ timeoutMs: 60_000 });
    try {
      const url = `${worker.url}/e2b/sandbox/health`;
      const headers = { 'E2b-Sandbox-Id': sandbox.sandboxId, 'E2b-Sandbox-Port': '49983' };
      const without = await fetch(url, { headers });
      assert.equal(without.status, 401);
      assert.equal(((await without.json()) as { code: number }).code, 401);
      const withApiKey = await fetch(url, {
        headers: { ...headers, 'X-API-KEY': apiKey, Authorization: `Bearer ${apiKey}` },
      });
      assert.equal(withApiKey.status, 401);
      const wrong = await fetch(url, { headers: { ...headers, 'X-Access-Token': 'x'.repeat(43) } });
      assert.equal(wrong.status, 401);
      const info = await sandbox.getInfo();
      assert.ok(info.sandboxId);
      await assert.rejects(
        Sandbox.create({ apiKey: 'wrong-key' }),
        (error: unknown) => error instanceof AuthenticationError,
      );
      await assert.rejects(Sandbox.create('no-such-template'), (error: unknown) => {
        assert.ok(error instanceof SandboxError, String(error));
        assert.match((error as Error).message, /404/);
        return true;
      });
      await assert.rejects(sandbox.pause(), /not supported by sandpool/);
      // No egress on this worker: asking for the internet is refused, saying why.
      await assert.rejects(Sandbox.create({ allowInternetAccess: true }), /403: .*network/);
      await assert.rejects(sandbox.getMetrics(), /metrics are not supported by sandpool/);
    } finally {
      await sandbox.kill();
    }
  });
});

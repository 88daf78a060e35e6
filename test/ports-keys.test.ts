import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { loadCoordinatorConfig } from '../packages/server/src/config/coordinator-config.js';
import { Coordinator } from '../packages/server/src/coordinator/coordinator.js';
import { TestRedis } from './support/redis-server.js';
import { startWorker } from './support/worker-harness.js';

function get(base: string, host: string, path: string, headers: Record<string, string>) {
  const u = new URL(base);
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const r = httpRequest(
      { host: u.hostname, port: u.port, path, headers: { host, ...headers } },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    r.on('error', reject);
    r.end();
  });
}

/**
 * Preview URLs with API keys on the worker and the coordinator: a preview host needs only the
 * session's token (the coordinator authenticates to the worker with its key), the path form
 * needs the API key.
 */
test('preview hosts and the path form with API keys set', async () => {
  const redis = await TestRedis.start();
  const w = await startWorker({ poolSize: 1, redisUrl: redis.url, apiKey: 'k'.repeat(32) });
  const co = await Coordinator.create({
    ...loadCoordinatorConfig({}, {}),
    port: 0,
    redisUrl: redis.url,
    apiKey: 'k'.repeat(32),
    logLevel: 'silent',
  });
  const c = await co.listen();
  try {
    const auth = { authorization: `Bearer ${'k'.repeat(32)}`, 'content-type': 'application/json' };
    for (let i = 0; i < 100; i++) {
      const h = (await (await fetch(`${c}/health`)).json()) as { healthy_workers: number };
      if (h.healthy_workers) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const s = (await (
      await fetch(`${c}/v1/sessions`, { method: 'POST', headers: auth, body: '{}' })
    ).json()) as { session_id: string; access_token: string };
    await fetch(`${c}/v1/sessions/${s.session_id}/processes`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        command: 'python3 -m http.server 8000 --bind 127.0.0.1 --directory /etc',
      }),
    });
    const port = new URL(c).port;
    const host = `8000-${s.session_id}.localhost:${port}`;
    for (let i = 0; i < 100; i++) {
      const probe = await get(c, host, '/hostname', { 'x-access-token': s.access_token });
      if (probe.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const r1 = await get(c, host, '/hostname', {
      'x-access-token': s.access_token,
      authorization: 'Basic abc',
    });
    const r2 = await get(c, host, '/hostname', {});
    const r3 = await get(
      c,
      `localhost:${port}`,
      `/v1/sessions/${s.session_id}/ports/8000/hostname`,
      {},
    );
    const r4 = await get(
      c,
      `localhost:${port}`,
      `/v1/sessions/${s.session_id}/ports/8000/hostname`,
      {
        authorization: auth.authorization,
      },
    );
    const wp = new URL(w.url).port;
    const r5 = await get(w.url, `8000-${s.session_id}.localhost:${wp}`, '/hostname', {
      'x-access-token': s.access_token,
    });
    assert.equal(r1.status, 200);
    assert.equal(r1.body, 'sandbox\n');
    assert.equal(r2.status, 401);
    assert.equal(r3.status, 401);
    assert.equal(r4.status, 200);
    assert.equal(r5.status, 200);
  } finally {
    await co.close();
    await w.close();
    await redis.stop();
  }
});

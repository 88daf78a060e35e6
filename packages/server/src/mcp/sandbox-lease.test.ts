import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SandboxLease } from './sandbox-lease.js';

/**
 * The lease's lifecycle over a scripted `fetch` (the real API is exercised in
 * test/mcp-server.test.ts): lazy, shared, closed only when it is the lease's own.
 */

function fakeApi() {
  const calls: string[] = [];
  let created = 0;
  const session = (id: string) => ({
    session_id: id,
    worker_id: 'w1',
    created_at: '2025-01-01T00:00:00Z',
    expires_at: '2025-01-01T01:00:00Z',
    metadata: {},
  });
  const fetch = async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const call = `${init.method ?? 'GET'} ${url.pathname}`;
    calls.push(call);
    if (call === 'POST /v1/sessions') {
      created += 1;
      return Response.json(session(`own-${created}`), { status: 201 });
    }
    if (init.method === 'DELETE') return new Response(null, { status: 204 });
    return Response.json(session(url.pathname.split('/').at(-1) ?? ''));
  };
  return { fetch, calls };
}

describe('SandboxLease', () => {
  it('creates nothing until used, then one sandbox for concurrent callers', async () => {
    const api = fakeApi();
    const lease = new SandboxLease({
      connection: { url: 'http://sandpool.test', fetch: api.fetch },
    });
    assert.equal(lease.current, undefined);
    assert.deepEqual(api.calls, []);
    const [a, b] = await Promise.all([lease.get(), lease.get()]);
    assert.equal(a, b);
    assert.deepEqual(api.calls, ['POST /v1/sessions']);
    await lease.release();
    await lease.release();
    assert.deepEqual(api.calls, ['POST /v1/sessions', 'DELETE /v1/sessions/own-1']);
    await assert.rejects(lease.get(), /ended/);
  });

  it('leaves a named session open when the connection ends', async () => {
    const api = fakeApi();
    const lease = new SandboxLease({
      connection: { url: 'http://sandpool.test', fetch: api.fetch },
      sessionId: 'theirs',
    });
    assert.equal((await lease.get()).sessionId, 'theirs');
    assert.ok(lease.attached);
    await lease.release();
    assert.deepEqual(api.calls, ['GET /v1/sessions/theirs']);
  });

  it('closeCurrent ends the sandbox (even a named one); the next use gets a fresh one', async () => {
    const api = fakeApi();
    const lease = new SandboxLease({
      connection: { url: 'http://sandpool.test', fetch: api.fetch },
      sessionId: 'theirs',
    });
    assert.equal(await lease.closeCurrent(), undefined);
    await lease.get();
    assert.equal(await lease.closeCurrent(), 'theirs');
    assert.equal((await lease.get()).sessionId, 'own-1');
    assert.ok(!lease.attached);
    await lease.release();
    assert.deepEqual(api.calls, [
      'GET /v1/sessions/theirs',
      'DELETE /v1/sessions/theirs',
      'POST /v1/sessions',
      'DELETE /v1/sessions/own-1',
    ]);
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { createSession } from '../support/http.js';
import { containersOf } from '../support/docker.js';

/**
 * Every route, fed malformed JSON, wrong types, unknown fields, huge and empty bodies and odd
 * headers: the answer is a 2xx or a 4xx in the error shape, never a 5xx (SECURITY.md), and the
 * worker lives on.
 */
describe('fuzzed input never breaks the API', () => {
  let w: TestWorker;
  let session: string;

  before(async () => {
    // Short exec timeouts: a fuzzed body may well be a valid command.
    w = await startWorker({
      poolSize: 1,
      maxSessions: 50,
      execTimeoutMs: 500,
      maxExecTimeoutMs: 1000,
      sessionTtlSeconds: 30,
    });
    session = await createSession(w.url);
  });
  after(async () => {
    await w.close();
    assert.deepEqual(await containersOf(w.workerId), []);
  });

  async function send(
    method: string,
    path: string,
    body: string | undefined,
    headers: Record<string, string>,
  ) {
    const response = await fetch(`${w.url}${path}`, { method, body, headers });
    const text = await response.text();
    // No 5xx at all: a client's mistake is a 4xx, and the worker has room for every session
    // the fuzzer opens (each is closed again at once).
    assert.ok(
      response.status < 500,
      `${method} ${path} ${body?.slice(0, 200)} → ${response.status} ${text.slice(0, 300)}`,
    );
    if (response.status === 201 && method === 'POST' && !path.includes('/files')) {
      const created = JSON.parse(text) as { session_id?: unknown };
      if (typeof created.session_id === 'string') {
        await fetch(`${w.url}/v1/sessions/${created.session_id}`, { method: 'DELETE' });
      }
    }
    if (response.status >= 400) {
      const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      assert.equal(typeof parsed.error?.code, 'string', text);
      assert.ok(
        typeof parsed.error?.message === 'string' && parsed.error.message.length > 10,
        text,
      );
    }
    return response.status;
  }

  // Created sessions are removed again so the fuzzing does not fill the worker.
  async function cleanup() {
    const listed = (await (await fetch(`${w.url}/v1/sessions`)).json()) as {
      sessions: { session_id: string }[];
    };
    for (const s of listed.sessions)
      if (s.session_id !== session)
        await fetch(`${w.url}/v1/sessions/${s.session_id}`, { method: 'DELETE' });
  }

  const jsonRoutes = () =>
    [
      ['POST', '/v1/sessions'],
      ['POST', '/create_session'],
      ['POST', `/v1/sessions/${session}/exec`],
      ['POST', `/v1/sessions/${session}/keepalive`],
      ['POST', '/execute'],
    ] as const;

  test('JSON bodies of any shape', async () => {
    const body = fc.oneof(
      fc.json(),
      fc.object().map((o) => JSON.stringify(o)),
      fc
        .record(
          {
            command: fc.anything(),
            timeout_ms: fc.anything(),
            env: fc.anything(),
            cwd: fc.anything(),
          },
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o)),
      fc
        .record(
          {
            ttl_seconds: fc.anything(),
            metadata: fc.anything(),
            env: fc.anything(),
            extra: fc.string(),
          },
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o)),
      fc.string(),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...jsonRoutes()), body, async ([method, path], text) => {
        await send(method, path, text, { 'content-type': 'application/json' });
      }),
      { numRuns: 150 },
    );
    await cleanup();
  });

  test('odd paths, query strings and headers', async () => {
    const segment = fc.oneof(
      fc.string(),
      fc.constantFrom('..', '%00', '%2e%2e', session, 'sb_x', '\u0000', ' '),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'PUT', 'DELETE', 'POST', 'PATCH'),
        fc.constantFrom('files', 'files/list', 'exec', 'keepalive', ''),
        segment,
        fc.option(fc.string(), { nil: undefined }),
        fc.constantFrom(
          'application/json',
          'text/plain',
          'application/octet-stream',
          'multipart/form-data',
          '',
          'application/json; charset=utf-16',
          'text/html',
        ),
        async (method, route, raw, body, contentType) => {
          const path = `/v1/sessions/${session}/${route}?path=${encodeURIComponent(raw)}`;
          const headers: Record<string, string> = contentType
            ? { 'content-type': contentType }
            : {};
          await send(
            method,
            path,
            method === 'GET' || method === 'DELETE' ? undefined : (body ?? ''),
            headers,
          );
        },
      ),
      { numRuns: 150 },
    );
    await cleanup();
  });

  test('huge and empty bodies', async () => {
    assert.equal(
      await send('POST', '/v1/sessions', '', { 'content-type': 'application/json' }),
      201,
    );
    // The seed's load test: `hey -m POST` sends text/html with no body.
    assert.equal(await send('POST', '/create_session', '', { 'content-type': 'text/html' }), 201);
    assert.equal(
      await send(
        'POST',
        `/v1/sessions/${session}/exec`,
        JSON.stringify({ command: 'x'.repeat(2 * 1024 * 1024) }),
        { 'content-type': 'application/json' },
      ),
      400,
    );
    assert.equal(
      await send('POST', '/v1/sessions', `{"metadata":{"k":"${'v'.repeat(20 * 1024 * 1024)}"}}`, {
        'content-type': 'application/json',
      }),
      413,
    );
    assert.equal(
      await send('POST', '/v1/sessions', '[]', { 'content-type': 'application/json' }),
      400,
    );
    assert.equal(
      await send('POST', '/v1/sessions', 'null', { 'content-type': 'application/json' }),
      400,
    );
    await cleanup();
  });

  test('the worker is healthy afterwards and the first session still works', async () => {
    const health = await fetch(`${w.url}/health`);
    assert.equal(health.status, 200);
    const r = await fetch(`${w.url}/v1/sessions/${session}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'echo ok' }),
    });
    assert.equal(((await r.json()) as { stdout: string }).stdout, 'ok\n');
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, type TestWorker } from './support/worker-harness.js';
import { call } from './support/http.js';

const KEY = 'test-key-0123456789abcdef';

describe('the HTTP API: auth, validation, errors, streaming, metrics', () => {
  let w: TestWorker;
  const auth = { authorization: `Bearer ${KEY}` };

  before(async () => {
    // A high output cap: the slow-reader test needs more output than the socket buffers hold.
    w = await startWorker({ poolSize: 1, apiKey: KEY, outputLimitBytes: 64 * 1024 * 1024 });
  });
  after(() => w.close());

  test('every route but /health needs the bearer key', async () => {
    assert.equal((await call(w.url, 'GET', '/health')).status, 200);
    for (const [method, path] of [
      ['POST', '/v1/sessions'],
      ['GET', '/v1/sessions'],
      ['POST', '/create_session'],
      ['GET', '/metrics'],
    ] as const) {
      const refused = await call<{ error: { code: string; message: string } }>(w.url, method, path);
      assert.equal(refused.status, 401, path);
      assert.equal(refused.body.error.code, 'unauthorized');
      assert.match(refused.body.error.message, /Bearer/);
    }
    const wrong = await call(w.url, 'GET', '/v1/sessions', undefined, {
      authorization: 'Bearer nope',
    });
    assert.equal(wrong.status, 401);
    assert.equal((await call(w.url, 'GET', '/v1/sessions', undefined, auth)).status, 200);
  });

  test('bad bodies answer 400 invalid_request naming the problem', async () => {
    const id = (await call<{ session_id: string }>(w.url, 'POST', '/v1/sessions', {}, auth)).body
      .session_id;
    const cases: [unknown, RegExp][] = [
      [{ command: 'true', bogus: 1 }, /unknown field "bogus"/],
      [{ command: 42 }, /command must be string/],
      [{}, /exactly one of "command"/],
      [{ command: 'x', argv: ['y'] }, /exactly one of "command"/],
      [{ command: 'true', timeout_ms: 0 }, /timeout_ms/],
      [{ command: 'a\u0000b' }, /NUL/],
      [{ command: 'true', env: { 'A=B': 'x' } }, /unknown field "A=B" in body\.env/],
    ];
    for (const [body, message] of cases) {
      const r = await call<{ error: { code: string; message: string } }>(
        w.url,
        'POST',
        `/v1/sessions/${id}/exec`,
        body,
        auth,
      );
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.code, 'invalid_request');
      assert.match(r.body.error.message, message);
    }
    const notJson = await fetch(`${w.url}/v1/sessions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{nope',
    });
    assert.equal(notJson.status, 400);
    const ttl = await call<{ error: { code: string } }>(
      w.url,
      'POST',
      '/v1/sessions',
      { ttl_seconds: 10 ** 9 },
      auth,
    );
    assert.equal(ttl.status, 400);
    await call(w.url, 'DELETE', `/v1/sessions/${id}`, undefined, auth);
  });

  test('unknown sessions and routes answer in the error shape', async () => {
    const missing = await call<{ error: { code: string } }>(
      w.url,
      'POST',
      '/v1/sessions/sb_nope/exec',
      { command: 'true' },
      auth,
    );
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'session_not_found');
    const route = await call<{ error: { code: string; message: string } }>(
      w.url,
      'GET',
      '/v2/nothing',
      undefined,
      auth,
    );
    assert.equal(route.status, 404);
    assert.match(route.body.error.message, /No route GET \/v2\/nothing/);
  });

  test('NDJSON exec streams output before the command ends', async () => {
    const id = await createSessionWithKey(w.url);
    const started = Date.now();
    const response = await fetch(`${w.url}/v1/sessions/${id}/exec`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({ command: 'echo first; sleep 1.5; echo second >&2; exit 4' }),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /application\/x-ndjson/);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    const events: { type: string; data?: string; exit_code?: number; at: number }[] = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        events.push({
          ...(JSON.parse(buffered.slice(0, newline)) as { type: string }),
          at: Date.now() - started,
        });
        buffered = buffered.slice(newline + 1);
      }
    }
    assert.deepEqual(
      events.map((e) => [e.type, e.data ?? e.exit_code]),
      [
        ['stdout', 'first\n'],
        ['stderr', 'second\n'],
        ['exit', 4],
      ],
    );
    assert.ok(events[0].at < events[2].at - 1000, 'first output arrived while the command ran');
    await call(w.url, 'DELETE', `/v1/sessions/${id}`, undefined, auth);
  });

  test('a slow reader of a long NDJSON stream leaves no listener behind (no MaxListenersExceededWarning)', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const id = await createSessionWithKey(w.url);
      const response = await fetch(`${w.url}/v1/sessions/${id}/exec`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', accept: 'application/x-ndjson' },
        // Far more than the socket buffers hold, so the worker waits for this reader many times.
        body: JSON.stringify({ command: 'head -c 40000000 /dev/zero | tr "\\0" x' }),
      });
      assert.equal(response.status, 200);
      let bytes = 0;
      let last = '';
      for await (const value of response.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += value.byteLength;
        last = Buffer.from(value).toString('utf8');
        await new Promise((resolve) => setTimeout(resolve, 1)); // A slow consumer.
      }
      assert.ok(bytes > 40_000_000, `${bytes} bytes`);
      assert.match(last, /"type":"exit","exit_code":0/);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning').map(String),
        [],
      );
      await call(w.url, 'DELETE', `/v1/sessions/${id}`, undefined, auth);
    } finally {
      process.off('warning', onWarning);
    }
  });

  test('/metrics exposes pool, sessions and latency histograms', async () => {
    const text = await (await fetch(`${w.url}/metrics`, { headers: auth })).text();
    for (const name of [
      'sandpool_pool_size',
      'sandpool_active_sessions',
      'sandpool_session_create_seconds_bucket',
      'sandpool_exec_seconds_bucket',
      'sandpool_container_start_seconds_bucket',
    ]) {
      assert.ok(text.includes(name), name);
    }
  });

  async function createSessionWithKey(url: string): Promise<string> {
    const r = await call<{ session_id: string }>(url, 'POST', '/v1/sessions', {}, auth);
    return r.body.session_id;
  }
});

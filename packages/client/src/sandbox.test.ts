import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CapacityError, InternalError, SessionLostError, SessionNotFoundError } from './errors.js';
import { Sandbox } from './sandbox.js';
import type { ExecEvent } from './types.js';

/**
 * The SDK's own logic (stream fallback, event parsing, retry, close) over a scripted `fetch`.
 * Behaviour against a real worker is tested in test/client-sdk.test.ts.
 */

const session = {
  session_id: 's1',
  worker_id: 'w1',
  created_at: '2025-01-01T00:00:00Z',
  expires_at: '2025-01-01T01:00:00Z',
  metadata: {},
};

type Handler = (url: URL, init: RequestInit) => Response | Promise<Response>;

function scriptedFetch(handler: Handler): {
  fetch: typeof globalThis.fetch;
  calls: string[];
} {
  const calls: string[] = [];
  const fetch = async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(input instanceof Request ? input.url : input);
    calls.push(`${init.method ?? 'GET'} ${url.pathname}`);
    return handler(url, init);
  };
  return { fetch: fetch, calls };
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

function ndjson(lines: string[]): Response {
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      // Cut mid-line on purpose: the SDK has to reassemble lines.
      const text = lines.join('');
      controller.enqueue(encoder.encode(text.slice(0, 7)));
      controller.enqueue(encoder.encode(text.slice(7)));
      controller.close();
    },
  });
  return new Response(stream, { headers: { 'content-type': 'application/x-ndjson' } });
}

async function events(iterable: AsyncIterable<ExecEvent>): Promise<ExecEvent[]> {
  const out: ExecEvent[] = [];
  for await (const event of iterable) out.push(event);
  return out;
}

async function open(handler: Handler): Promise<{ sandbox: Sandbox; calls: string[] }> {
  const { fetch, calls } = scriptedFetch((url, init) =>
    url.pathname === '/v1/sessions' ? json(session, 201) : handler(url, init),
  );
  const sandbox = await Sandbox.create({ url: 'http://sandpool.test', fetch });
  return { sandbox, calls };
}

describe('Sandbox.execStream', () => {
  it('makes the events from a plain JSON answer when the server does not stream', async () => {
    const { sandbox } = await open(() =>
      json({
        stdout: 'out',
        stderr: 'err',
        exit_code: 3,
        duration_ms: 5,
        timed_out: false,
        truncated: false,
      }),
    );
    assert.deepEqual(await events(sandbox.execStream('x')), [
      { type: 'stdout', data: 'out' },
      { type: 'stderr', data: 'err' },
      { type: 'exit', exitCode: 3, durationMs: 5, timedOut: false, truncated: false },
    ]);
  });

  it('asks for NDJSON, and yields events whose lines were split between chunks', async () => {
    let accept: string | null = null;
    const { sandbox } = await open((_url, init) => {
      accept = new Headers(init.headers).get('accept');
      return ndjson([
        '{"type":"stdout","data":"a"}\n',
        '{"type":"future_kind"}\n',
        '{"type":"stdout","data":"b"}\n',
        '{"type":"exit","exit_code":0,"duration_ms":1,"timed_out":false,"truncated":false}\n',
      ]);
    });
    const seen: string[] = [];
    const result = await sandbox.exec('x', { onStdout: (d) => seen.push(d) });
    assert.match(String(accept), /application\/x-ndjson/);
    assert.deepEqual(seen, ['a', 'b']);
    assert.equal(result.stdout, 'ab');
    assert.equal(result.exitCode, 0);
  });

  it('throws the typed error of an error event, and fails a stream that ends without exit', async () => {
    const { sandbox } = await open(() =>
      ndjson([
        '{"type":"stdout","data":"a"}\n',
        '{"type":"error","error":{"code":"session_lost","message":"container died"}}\n',
      ]),
    );
    await assert.rejects(events(sandbox.execStream('x')), SessionLostError);
    const { sandbox: cut } = await open(() => ndjson(['{"type":"stdout","data":"a"}\n']));
    await assert.rejects(events(cut.execStream('x')), { code: 'invalid_response' });
  });
});

describe('Sandbox.create', () => {
  it('retries capacity_exhausted, honouring Retry-After, until a session is free', async () => {
    let tries = 0;
    const { fetch } = scriptedFetch(() =>
      ++tries < 3
        ? json({ error: { code: 'capacity_exhausted', message: 'full' } }, 503, {
            'retry-after': '0.05',
          })
        : json(session, 201),
    );
    const started = Date.now();
    const sandbox = await Sandbox.create({ url: 'http://sandpool.test', fetch });
    assert.equal(sandbox.sessionId, 's1');
    assert.equal(tries, 3);
    assert.ok(Date.now() - started >= 100, 'waited Retry-After twice');
  });

  it('gives up with a CapacityError once createTimeoutMs is spent', async () => {
    const { fetch } = scriptedFetch(() =>
      json({ error: { code: 'capacity_exhausted', message: 'full' } }, 503, {
        'retry-after': '0.02',
      }),
    );
    await assert.rejects(
      Sandbox.create({ url: 'http://sandpool.test', fetch, createTimeoutMs: 100 }),
      (error: unknown) =>
        error instanceof CapacityError &&
        error.retryAfterMs === 20 &&
        /gave up after \d+ tries/.test(error.message),
    );
  });
});

describe('internal_error', () => {
  it('is thrown as an InternalError at once: a server bug is never retried', async () => {
    const bug = () => json({ error: { code: 'internal_error', message: 'a bug' } }, 500);
    const created = scriptedFetch(bug);
    await assert.rejects(
      Sandbox.create({ url: 'http://sandpool.test', fetch: created.fetch }),
      (error: unknown) => error instanceof InternalError && error.status === 500,
    );
    assert.deepEqual(created.calls, ['POST /v1/sessions']);

    const { sandbox, calls } = await open(bug);
    await assert.rejects(sandbox.exec('true'), InternalError);
    assert.deepEqual(calls, ['POST /v1/sessions', 'POST /v1/sessions/s1/exec']);
  });
});

describe('Sandbox.close', () => {
  it('deletes once, is quiet about a session already gone, and blocks later calls', async () => {
    const { sandbox, calls } = await open(() =>
      json({ error: { code: 'session_not_found', message: 'gone' } }, 404),
    );
    await Promise.all([sandbox.close(), sandbox.close()]);
    await sandbox.close();
    assert.equal(calls.filter((c) => c.startsWith('DELETE')).length, 1);
    assert.equal(sandbox.closed, true);
    await assert.rejects(sandbox.exec('x'), SessionNotFoundError);
  });

  it('can be tried again when closing failed', async () => {
    let fail = true;
    const { sandbox } = await open(() =>
      fail ? json({ error: { code: 'runtime_unavailable', message: 'down' } }, 503) : json({}),
    );
    await assert.rejects(sandbox.close(), { code: 'runtime_unavailable' });
    assert.equal(sandbox.closed, false);
    fail = false;
    await sandbox.close();
    assert.equal(sandbox.closed, true);
  });
});

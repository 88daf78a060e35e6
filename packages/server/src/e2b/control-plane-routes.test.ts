import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SandpoolError } from '../errors/sandpool-error.js';
import { createInputOf, listPage } from './control-plane-routes.js';
import type { E2bSandboxDetail } from './e2b-sandbox-view.js';

function sandbox(id: string, startedAt: string, extra: Partial<E2bSandboxDetail> = {}) {
  return {
    templateID: 'base',
    alias: 'base',
    sandboxID: id,
    clientID: 'w1',
    startedAt,
    endAt: startedAt,
    envdVersion: '0.5.7',
    envdAccessToken: 't',
    domain: 'localhost:5000',
    cpuCount: 1,
    memoryMB: 512,
    diskSizeMB: 0,
    metadata: {},
    state: 'running' as const,
    volumeMounts: [],
    ...extra,
  };
}

const all = [
  sandbox('a', '2026-01-01T00:00:01Z', { metadata: { team: 'x', 'a b': 'c&d' } }),
  sandbox('b', '2026-01-01T00:00:02Z', { templateID: 'code-interpreter' }),
  sandbox('c', '2026-01-01T00:00:03Z', { metadata: { team: 'x' } }),
  sandbox('d', '2026-01-01T00:00:03Z'),
];

test('pages newest first by default, the token naming the next page’s first sandbox', () => {
  const first = listPage(all, { limit: '2' });
  assert.deepEqual(
    first.items.map((s) => s.sandboxID),
    ['d', 'c'],
  );
  assert.ok(first.nextToken);
  const second = listPage(all, { limit: '2', nextToken: first.nextToken });
  assert.deepEqual(
    second.items.map((s) => s.sandboxID),
    ['b', 'a'],
  );
  assert.equal(second.nextToken, undefined);
  // The sandbox the token named ended meanwhile: the page starts at the next one, no repeats.
  const gone = listPage(
    all.filter((s) => s.sandboxID !== 'b'),
    { limit: '2', nextToken: first.nextToken },
  );
  assert.deepEqual(
    gone.items.map((s) => s.sandboxID),
    ['a'],
  );
  assert.deepEqual(
    listPage(all, { order: 'asc' }).items.map((s) => s.sandboxID),
    ['a', 'b', 'c', 'd'],
  );
});

test('filters by metadata as the SDK encodes it, by state and by E2B template name', () => {
  // The SDK encodes each key and value, then the pairs as a query string.
  const encoded = new URLSearchParams({
    [encodeURIComponent('a b')]: encodeURIComponent('c&d'),
  }).toString();
  assert.deepEqual(
    listPage(all, { metadata: encoded }).items.map((s) => s.sandboxID),
    ['a'],
  );
  assert.deepEqual(
    listPage(all, { metadata: 'team=x' }).items.map((s) => s.sandboxID),
    ['c', 'a'],
  );
  assert.equal(listPage(all, { state: 'paused' }).items.length, 0);
  assert.equal(listPage(all, { state: 'running,paused' }).items.length, 4);
  assert.deepEqual(
    listPage(all, { template: 'code-interpreter-v1' }).items.map((s) => s.sandboxID),
    ['b'],
  );
  assert.deepEqual(
    listPage(all, { startedAfter: '2026-01-01T00:00:02Z' }).items.map((s) => s.sandboxID),
    ['d', 'c'],
  );
  assert.throws(() => listPage(all, { state: 'dead' }), SandpoolError);
  assert.throws(() => listPage(all, { limit: '0' }), SandpoolError);
});

test('a NewSandbox maps to a session: template, timeout, env, metadata, network', () => {
  assert.deepEqual(createInputOf({ templateID: 'code-interpreter-v1' }), {
    template: 'code-interpreter',
    ttl_seconds: 300,
    env: undefined,
    metadata: undefined,
    network: undefined,
  });
  const input = createInputOf({
    templateID: 'base',
    timeout: 60,
    envVars: { A: '1' },
    metadata: { k: 'v' },
    network: { allowOut: ['pypi.org'], denyOut: ['evil.example'] },
  });
  assert.deepEqual(input, {
    template: 'base',
    ttl_seconds: 60,
    env: { A: '1' },
    metadata: { k: 'v' },
    network: { allow_out: ['pypi.org'], deny_out: ['evil.example'] },
  });
  assert.deepEqual(createInputOf({ templateID: 'base', allow_internet_access: true }).network, {
    allow_out: ['*:*'],
  });
  assert.equal(
    createInputOf({ templateID: 'base', allow_internet_access: false }).network,
    undefined,
  );
  assert.deepEqual(
    createInputOf({ templateID: 'base', network: { denyOut: ['10.0.0.0/8'] } }).network,
    { allow_out: ['*:*'], deny_out: ['10.0.0.0/8'] },
  );
});

test('what sandpool cannot honour is refused with what it offers', () => {
  for (const body of [
    { templateID: 'base', autoPause: true },
    { templateID: 'base', mcp: { x: {} } },
    { templateID: 'base', volumeMounts: [] },
    { templateID: 'base', network: { egressProxy: { address: 'p:1' } } },
    { templateID: 'base', network: { allowPublicTraffic: true } },
    { templateID: 'base', allow_internet_access: false, network: { allowOut: ['a.com'] } },
  ]) {
    assert.throws(
      () => createInputOf(body),
      (error: unknown) =>
        error instanceof SandpoolError &&
        error.code === 'invalid_request' &&
        /not supported|one or the other/.test(error.message),
    );
  }
});

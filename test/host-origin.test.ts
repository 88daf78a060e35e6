import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadCoordinatorConfig } from '../packages/server/src/config/coordinator-config.js';
import { Coordinator } from '../packages/server/src/coordinator/coordinator.js';
import { containersOf } from './support/docker.js';
import { TestRedis } from './support/redis-server.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

/**
 * The browser boundary of a keyless loopback worker and coordinator (issue 10, item 3), the
 * official MCP conformance suite's DNS-rebinding scenario against both, and bodies the way load
 * tools send them (item 1: `hey -m POST` says text/html with no body).
 */

const run = promisify(execFile);
const CONFORMANCE = fileURLToPath(
  new URL('../node_modules/@modelcontextprotocol/conformance/dist/index.js', import.meta.url),
);

interface RawAnswer {
  status: number;
  body: string;
}

/** One request with headers fetch will not let a caller set (Host). */
function raw(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(new URL(path, base), { method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

function codeOf(answer: RawAnswer): string | undefined {
  try {
    return (JSON.parse(answer.body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'host-origin-test', version: '1.0.0' },
  },
});
const MCP_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

/** Runs the conformance suite's scenario; answers its exit code and each check's status. */
async function dnsRebindingScenario(
  mcpUrl: string,
): Promise<{ code: number; checks: Record<string, string>; output: string }> {
  const cwd = await mkdtemp(join(tmpdir(), 'sandpool-conformance-'));
  try {
    const outcome = await run(
      process.execPath,
      [CONFORMANCE, 'server', '--url', mcpUrl, '--scenario', 'dns-rebinding-protection'],
      { cwd, timeout: 60_000 },
    ).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        code: typeof error.code === 'number' ? error.code : -1,
        stdout: error.stdout ?? '',
        stderr: error.stderr ?? '',
      }),
    );
    // eslint-disable-next-line no-control-regex
    const output = `${outcome.stdout}\n${outcome.stderr}`.replace(/\u001b\[[0-9;]*m/g, '');
    const checks: Record<string, string> = {};
    for (const match of output.matchAll(/\[([a-z-]+)\s*\] (SUCCESS|FAILURE|WARNING)/g)) {
      checks[match[1] ?? ''] = match[2] ?? '';
    }
    return { code: outcome.code, checks, output };
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

describe('Host and Origin on a keyless loopback worker and coordinator', () => {
  let redis: TestRedis;
  let w: TestWorker;
  let coordinator: Coordinator;
  let c: string;

  before(async () => {
    redis = await TestRedis.start();
    w = await startWorker({ poolSize: 1, maxSessions: 8, redisUrl: redis.url });
    coordinator = await Coordinator.create({
      ...loadCoordinatorConfig({}, {}),
      port: 0,
      redisUrl: redis.url,
      logLevel: process.env.SANDPOOL_TEST_LOG_LEVEL ?? 'silent',
    });
    c = await coordinator.listen();
    const deadline = Date.now() + 15_000;
    for (;;) {
      const health = (await (await fetch(`${c}/health`)).json()) as { healthy_workers: number };
      if (health.healthy_workers >= 1) break;
      assert.ok(Date.now() < deadline, 'the worker never showed up at the coordinator');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  after(async () => {
    await coordinator?.close();
    await w?.close();
    await redis?.stop();
    assert.deepEqual(await containersOf(w.workerId), [], 'containers left behind');
  });

  test('a foreign Host gets 403 forbidden_origin on every route, /health and /mcp included', async () => {
    for (const base of [w.url, c]) {
      const port = new URL(base).port;
      for (const [method, path, body] of [
        ['GET', '/health', undefined],
        ['POST', '/create_session', ''],
        ['GET', '/v1/sessions', undefined],
        ['POST', '/mcp', INITIALIZE],
        ['GET', '/no/such/route', undefined],
        ['GET', '/openapi.json', undefined],
      ] as const) {
        const answer = await raw(
          base,
          method,
          path,
          { host: `evil.example.com:${port}`, ...MCP_HEADERS },
          body,
        );
        assert.equal(answer.status, 403, `${base} ${method} ${path}: ${answer.body}`);
        assert.equal(codeOf(answer), 'forbidden_origin');
        assert.match(answer.body, /--allowed-hosts/);
      }
    }
  });

  test('a cross-site page gets 403; same-origin and loopback clients go through', async () => {
    for (const base of [w.url, c]) {
      const port = new URL(base).port;
      const host = `127.0.0.1:${port}`;
      // What a form on another site does: a simple POST, no preflight.
      for (const origin of [
        'http://evil.example',
        'null',
        `http://localhost:${Number(port) + 1}`,
      ]) {
        const answer = await raw(base, 'POST', '/create_session', {
          host,
          origin,
          'content-type': 'text/plain',
        });
        assert.equal(answer.status, 403, `${base} Origin ${origin}: ${answer.body}`);
        assert.equal(codeOf(answer), 'forbidden_origin');
        assert.match(answer.body, /--allowed-origins/);
      }
      for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`, undefined]) {
        const answer = await raw(base, 'GET', '/v1/sessions', {
          host: origin === undefined ? `localhost:${port}` : host,
          ...(origin === undefined ? {} : { origin }),
        });
        assert.equal(answer.status, 200, `${base} Origin ${origin}: ${answer.body}`);
      }
    }
  });

  test('hey -m POST (text/html, no body) creates sessions on worker and coordinator; a non-JSON body is refused', async () => {
    for (const base of [w.url, c]) {
      const host = new URL(base).host;
      for (const [path, type] of [
        ['/create_session', 'text/html'],
        ['/v1/sessions', 'application/x-www-form-urlencoded'],
        ['/v1/sessions', 'application/json'],
      ] as const) {
        const created = await raw(base, 'POST', path, { host, 'content-type': type }, '');
        assert.equal(created.status, 201, `${base} ${path} ${type}: ${created.body}`);
        const id = (JSON.parse(created.body) as { session_id: string }).session_id;
        const kept = await raw(
          base,
          'POST',
          `/v1/sessions/${id}/keepalive`,
          { host, 'content-type': 'text/html' },
          '',
        );
        assert.equal(kept.status, 200, `keepalive with no body: ${kept.body}`);
        const ran = await raw(
          base,
          'POST',
          `/v1/sessions/${id}/exec`,
          { host, 'content-type': 'application/json' },
          JSON.stringify({ command: 'echo through' }),
        );
        assert.equal(ran.status, 200, ran.body);
        assert.equal((JSON.parse(ran.body) as { stdout: string }).stdout, 'through\n');
        assert.equal((await raw(base, 'DELETE', `/v1/sessions/${id}`, { host })).status, 204);
      }
      const untyped = await raw(base, 'POST', '/v1/sessions', { host }, '{"ttl_seconds": 60}');
      assert.equal(untyped.status, 201, `a body without a type is read as JSON: ${untyped.body}`);
      const untypedId = (JSON.parse(untyped.body) as { session_id: string }).session_id;
      assert.equal((await raw(base, 'DELETE', `/v1/sessions/${untypedId}`, { host })).status, 204);

      const text = await raw(
        base,
        'POST',
        '/v1/sessions',
        { host, 'content-type': 'text/plain' },
        '{"ttl_seconds": 60}',
      );
      assert.equal(text.status, 400, text.body);
      assert.equal(codeOf(text), 'invalid_request');
      assert.match(text.body, /application\/json/);
    }
  });

  test('the MCP conformance suite’s dns-rebinding-protection scenario passes on worker and coordinator', async () => {
    for (const base of [w.url, c]) {
      const { code, checks, output } = await dnsRebindingScenario(`${base}/mcp`);
      assert.deepEqual(
        checks,
        {
          'localhost-host-rebinding-rejected': 'SUCCESS',
          'localhost-host-valid-accepted': 'SUCCESS',
        },
        output,
      );
      assert.equal(code, 0, output);
    }
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { loadCoordinatorConfig } from '../packages/server/src/config/coordinator-config.js';
import { Coordinator } from '../packages/server/src/coordinator/coordinator.js';
import { call, exec, type ExecResult } from './support/http.js';
import { containersOf, docker } from './support/docker.js';
import { TestRedis } from './support/redis-server.js';
import { SandpoolProcess } from './support/sandpool-process.js';

/**
 * Distributed mode end to end: a real redis-server, three worker processes and two coordinators
 * (one in this process, one `sandpool coordinator` process) on loopback. Short heartbeats
 * (500 ms, TTL 2 s) keep the failover cases fast.
 */

const HEARTBEAT_TTL_MS = 2000;
const MAX_SESSIONS = 3;
const run = randomBytes(3).toString('hex');

interface Session {
  session_id: string;
  worker_id: string;
  expires_at: string;
}

/** Polls `check` until it finds something, and returns it (support/until.ts only waits). */
async function eventually<T>(
  check: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('distributed mode: coordinators, Redis and three workers', () => {
  let redis: TestRedis;
  const workerIds = [1, 2, 3].map((n) => `dist-${run}-w${n}`);
  const workers = new Map<string, SandpoolProcess>();
  let inProcess: Coordinator; // coordinator A
  let asProcess: SandpoolProcess; // coordinator B: `sandpool coordinator` as users run it
  let a: string; // coordinator A's URL
  let b: string; // coordinator B's URL

  const startWorker = async (workerId: string) => {
    const worker = await SandpoolProcess.start([
      'serve',
      '--port',
      '0',
      '--pool-size',
      '1',
      '--pool-max', // a fixed pool: the leak check below counts one warm container per worker
      '1',
      '--max-sessions',
      String(MAX_SESSIONS),
      '--worker-id',
      workerId,
      '--redis',
      redis.url,
      '--heartbeat-interval-ms',
      '500',
      '--heartbeat-ttl-ms',
      String(HEARTBEAT_TTL_MS),
      '--reap-interval-ms',
      '500',
      '--log-level',
      'warn',
    ]);
    workers.set(workerId, worker);
    return worker;
  };

  const healthyWorkers = async (base: string) => {
    const health = await call<{ workers?: { worker_id: string; healthy: boolean }[] }>(
      base,
      'GET',
      '/health',
    );
    return new Set((health.body.workers ?? []).filter((w) => w.healthy).map((w) => w.worker_id));
  };

  const create = async (base: string) => {
    const created = await call<Session>(base, 'POST', '/v1/sessions', {});
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body;
  };

  before(async () => {
    redis = await TestRedis.start();
    const coordinatorProcess = SandpoolProcess.start([
      'coordinator',
      '--port',
      '0',
      '--redis',
      redis.url,
      '--log-level',
      'warn',
    ]);
    await Promise.all(workerIds.map((id) => startWorker(id)));
    inProcess = await Coordinator.create({
      ...loadCoordinatorConfig({}, {}),
      port: 0,
      redisUrl: redis.url,
      logLevel: process.env.SANDPOOL_TEST_LOG_LEVEL ?? 'silent',
    });
    a = await inProcess.listen();
    asProcess = await coordinatorProcess;
    b = asProcess.url;
    await eventually(async () => (await healthyWorkers(a)).size === 3, 'three healthy workers');
  });

  after(async () => {
    await inProcess.close();
    assert.equal(await asProcess.stop('SIGTERM'), 0);
    await Promise.all([...workers.values()].map((w) => w.stop('SIGTERM')));
    await redis.stop();
    for (const id of workerIds) {
      const left = await containersOf(id);
      if (left.length > 0) await docker('rm', '-f', ...left);
      assert.deepEqual(left, [], `containers of ${id} left after SIGTERM`);
    }
  });

  test('sessions spread over the workers, and both coordinators give the same answers', async () => {
    const sessions: Session[] = [];
    for (let i = 0; i < 6; i++) sessions.push(await create(i % 2 === 0 ? a : b));
    const used = new Set(sessions.map((s) => s.worker_id));
    assert.ok(used.size >= 2, `all sessions on ${[...used].join(',')}`);
    for (const s of sessions) {
      const [viaA, viaB] = await Promise.all(
        [a, b].map((base) => call<Session>(base, 'GET', `/v1/sessions/${s.session_id}`)),
      );
      assert.equal(viaA.status, 200);
      assert.deepEqual(viaA.body, viaB.body);
      assert.equal(viaA.body.worker_id, s.worker_id);
    }
    const listed = await call<{ sessions: Session[] }>(b, 'GET', '/v1/sessions');
    for (const s of sessions) {
      assert.ok(listed.body.sessions.some((l) => l.session_id === s.session_id));
    }
    for (const s of sessions) {
      assert.equal((await call(a, 'DELETE', `/v1/sessions/${s.session_id}`)).status, 204);
    }
    const gone = await call<{ error: { code: string } }>(
      b,
      'GET',
      `/v1/sessions/${sessions[0].session_id}`,
    );
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'session_not_found');
  });

  test('every operation works through a coordinator, streaming and files included', async () => {
    const created = await call<Session>(a, 'POST', '/v1/sessions', {
      ttl_seconds: 300,
      env: { GREETING: 'hello' },
      metadata: { suite: 'distributed' },
    });
    assert.equal(created.status, 201);
    const id = created.body.session_id;

    const plain = await exec(b, id, { command: 'echo "$GREETING"; tr a-z A-Z', stdin: 'x\n' });
    assert.deepEqual([plain.stdout, plain.exit_code], ['hello\nX\n', 0]);

    // NDJSON: the first line must arrive while the command still runs.
    const started = Date.now();
    const response = await fetch(`${a}/v1/sessions/${id}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({ command: 'echo first; sleep 1.5; echo second >&2' }),
    });
    assert.equal(response.headers.get('content-type'), 'application/x-ndjson');
    const decoder = new TextDecoder();
    let text = '';
    let firstAt = 0;
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      if (!firstAt && text.includes('first')) firstAt = Date.now() - started;
    }
    const events = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; data?: string; exit_code?: number });
    assert.deepEqual(events[0], { type: 'stdout', data: 'first\n' });
    assert.deepEqual(events[1], { type: 'stderr', data: 'second\n' });
    assert.equal(events.at(-1)?.type, 'exit');
    assert.ok(firstAt > 0 && firstAt < 1300, `first output after ${firstAt} ms`);

    // A 2 MiB upload streams through and comes back byte for byte.
    const bytes = randomBytes(2 * 1024 * 1024);
    const put = await fetch(`${b}/v1/sessions/${id}/files?path=data/blob.bin`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    assert.equal(put.status, 201);
    assert.deepEqual(await put.json(), {
      path: '/home/sandboxuser/data/blob.bin',
      size: bytes.length,
    });
    const got = await fetch(`${a}/v1/sessions/${id}/files?path=data/blob.bin`);
    assert.equal(got.status, 200);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes), 'downloaded bytes differ');
    const listed = await call<{ entries: { name: string; size: number }[] }>(
      a,
      'GET',
      `/v1/sessions/${id}/files/list?path=data`,
    );
    assert.deepEqual(
      listed.body.entries.map((e) => [e.name, e.size]),
      [['blob.bin', bytes.length]],
    );
    assert.equal(
      (await call(b, 'DELETE', `/v1/sessions/${id}/files?path=data/blob.bin`)).status,
      204,
    );
    const missing = await call<{ error: { code: string } }>(
      a,
      'GET',
      `/v1/sessions/${id}/files?path=data/blob.bin`,
    );
    assert.equal(missing.body.error.code, 'file_not_found');
    const traversal = await call<{ error: { code: string } }>(
      b,
      'GET',
      `/v1/sessions/${id}/files?path=../../etc/passwd`,
    );
    assert.equal(traversal.body.error.code, 'invalid_path');

    const kept = await call<Session>(b, 'POST', `/v1/sessions/${id}/keepalive`, {
      ttl_seconds: 900,
    });
    assert.equal(kept.status, 200);
    assert.ok(Date.parse(kept.body.expires_at) > Date.parse(created.body.expires_at));

    // The seed's routes.
    const seed = await call<ExecResult>(a, 'POST', '/execute', { session_id: id, command: 'pwd' });
    assert.equal(seed.body.stdout, '/home/sandboxuser\n');
    const seedCreate = await call<Session>(b, 'POST', '/create_session');
    assert.equal(seedCreate.status, 201);

    // Errors keep the worker's shape.
    const bad = await call<{ error: { code: string } }>(a, 'POST', '/v1/sessions', { bogus: 1 });
    assert.deepEqual([bad.status, bad.body.error.code], [400, 'invalid_request']);
    const unknown = await call<{ error: { code: string } }>(
      b,
      'POST',
      `/v1/sessions/sb_${'0'.repeat(32)}/exec`,
      {
        command: 'true',
      },
    );
    assert.deepEqual([unknown.status, unknown.body.error.code], [404, 'session_not_found']);

    const document = await call<{ openapi: string }>(b, 'GET', '/openapi.json');
    assert.deepEqual([document.status, document.body.openapi.startsWith('3.')], [200, true]);

    const metrics = await (await fetch(`${a}/metrics`)).text();
    assert.match(metrics, /sandpool_coordinator_requests_routed_total\{worker="dist-/);
    assert.match(metrics, /sandpool_coordinator_healthy_workers 3/);

    for (const s of [id, seedCreate.body.session_id]) {
      assert.equal((await call(a, 'DELETE', `/v1/sessions/${s}`)).status, 204);
    }
  });

  test('a client that goes away mid-stream through the coordinator leaves no process behind', async () => {
    const { session_id: id } = await create(a);
    const controller = new AbortController();
    const response = await fetch(`${b}/v1/sessions/${id}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({ command: 'echo started; exec sleep 77' }),
      signal: controller.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read(); // "started"
    const sleeping = async () =>
      (await exec(a, id, { command: 'cat /proc/[0-9]*/comm 2>/dev/null | grep -c "^sleep$"' }))
        .stdout;
    assert.equal(await sleeping(), '1\n');
    controller.abort();
    await eventually(
      async () => (await sleeping()) === '0\n',
      'the command killed after the client left',
    );
    assert.equal((await call(a, 'DELETE', `/v1/sessions/${id}`)).status, 204);
  });

  test('MCP at /mcp on a coordinator runs its tools in a sandbox on a worker', async () => {
    const client = new Client({ name: 'sandpool-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${a}/mcp`));
    await client.connect(transport);
    try {
      const result = (await client.callTool({
        name: 'run_command',
        arguments: { command: 'echo via-coordinator' },
      })) as CallToolResult;
      const text = result.content.map((part) => (part.type === 'text' ? part.text : '')).join('');
      assert.match(text, /via-coordinator/);
    } finally {
      await transport.terminateSession(); // Ends the MCP session and so its sandbox.
      await client.close();
    }
    await eventually(async () => {
      const listed = await call<{ sessions: unknown[] }>(b, 'GET', '/v1/sessions');
      return listed.body.sessions.length === 0;
    }, 'the MCP sandbox closed');
  });

  test('a coordinator with an API key checks it and forwards it to the workers', async () => {
    const apiKey = randomBytes(16).toString('hex');
    const keyed = await Coordinator.create({
      ...loadCoordinatorConfig({}, {}),
      port: 0,
      redisUrl: redis.url,
      apiKey,
      logLevel: 'silent',
    });
    try {
      const url = await keyed.listen();
      const auth = { authorization: `Bearer ${apiKey}` };
      assert.equal((await call(url, 'GET', '/health')).status, 200);
      const refused = await call<{ error: { code: string } }>(url, 'POST', '/v1/sessions', {});
      assert.deepEqual([refused.status, refused.body.error.code], [401, 'unauthorized']);
      const created = await call<Session>(url, 'POST', '/v1/sessions', {}, auth);
      assert.equal(created.status, 201);
      const id = created.body.session_id;
      assert.equal((await call(url, 'GET', `/v1/sessions/${id}`)).status, 401);
      // A public documentation route must not become a way around the key.
      for (const path of ['/docs/../v1/sessions', '/docs/%2e%2e/v1/sessions']) {
        const status = await new Promise<number | undefined>((resolve, reject) => {
          request(`${url}${path}`, (response) => {
            response.resume();
            resolve(response.statusCode);
          })
            .once('error', reject)
            .end();
        });
        assert.ok(status !== undefined && status >= 400 && status < 500, `${path}: ${status}`);
      }
      assert.equal((await call(url, 'DELETE', `/v1/sessions/${id}`, undefined, auth)).status, 204);
    } finally {
      await keyed.close();
    }
  });

  test('a burst beyond capacity gets 503 with Retry-After, and leaks no container', async () => {
    const capacity = MAX_SESSIONS * workerIds.length;
    // Sessions of earlier tests end in the background (an MCP lease after its client left, a
    // DELETE's removal): wait until none is left, so every slot is free for the burst and none
    // frees up during it.
    await eventually(
      async () => {
        const { body } = await call<{ sessions: unknown[] }>(a, 'GET', '/v1/sessions');
        return body.sessions.length === 0;
      },
      'no session left from earlier tests',
      30_000,
    );
    const answers = await Promise.all(
      Array.from({ length: capacity + 5 }, (_, i) =>
        call<Session & { error?: { code: string } }>(i % 2 ? a : b, 'POST', '/v1/sessions', {}),
      ),
    );
    const created = answers.filter((r) => r.status === 201);
    try {
      const refused = answers.filter((r) => r.status === 503);
      assert.equal(created.length + refused.length, answers.length, 'only 201 and 503 expected');
      assert.ok(
        created.length <= capacity && created.length >= capacity - 2,
        `${created.length} created`,
      );
      assert.ok(refused.length >= 5);
      for (const r of refused) {
        assert.equal(r.body.error?.code, 'capacity_exhausted');
        assert.ok(Number(r.headers.get('retry-after')) >= 1);
      }
      assert.deepEqual(await healthyWorkers(a), new Set(workerIds));
    } finally {
      // Even when an assertion failed: the tests after this one need the slots back.
      await Promise.all(created.map((r) => call(a, 'DELETE', `/v1/sessions/${r.body.session_id}`)));
    }
    // Nothing beyond the one warm container per worker (a refill may still be under way).
    for (const id of workerIds) {
      let seen: string[] = [];
      await eventually(
        async () => (seen = await containersOf(id)).length <= 1,
        `${id} back to its pool`,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; containers: ${seen.length}`);
      });
    }
  });

  test('SIGKILL a worker: 410 within the heartbeat TTL, new sessions elsewhere; restarted, it re-adopts what it can account for and removes the rest', async () => {
    // A session on the first worker, with a file in it.
    const victimId = workerIds[0];
    let session: Session | undefined;
    const others: Session[] = [];
    while (!session) {
      const s = await create(a);
      if (s.worker_id === victimId) session = s;
      else others.push(s);
      assert.ok(others.length < 12, 'no session landed on the first worker');
    }
    await Promise.all(others.map((s) => call(a, 'DELETE', `/v1/sessions/${s.session_id}`)));
    const id = session.session_id;
    await exec(a, id, { command: 'echo kept > note.txt' });
    // A container of this worker that nobody recorded: the restarted worker must remove it.
    const stray = (
      await docker(
        'run',
        '-d',
        '--label',
        'sandpool.managed=true',
        '--label',
        `sandpool.worker=${victimId}`,
        process.env.SANDPOOL_IMAGE ?? 'sandpool/sandbox:latest',
        'sleep',
        '600',
      )
    ).trim();

    await workers.get(victimId)!.stop('SIGKILL');
    const killedAt = Date.now();
    const lost = await eventually(
      async () => {
        const r = await call<{ error: { code: string; message: string } }>(
          b,
          'POST',
          `/v1/sessions/${id}/exec`,
          {
            command: 'true',
          },
        );
        return r.status === 410 ? r : undefined;
      },
      '410 for the dead worker',
      HEARTBEAT_TTL_MS + 3000,
    );
    assert.ok(
      Date.now() - killedAt <= HEARTBEAT_TTL_MS + 1500,
      `410 after ${Date.now() - killedAt} ms`,
    );
    assert.equal(lost.body.error.code, 'session_lost');
    assert.match(lost.body.error.message, new RegExp(`worker ${victimId} is gone`));

    const health = await call<{
      status: string;
      workers: { worker_id: string; healthy: boolean }[];
    }>(a, 'GET', '/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.workers.find((w) => w.worker_id === victimId)?.healthy, false);
    const elsewhere = await Promise.all([create(a), create(b), create(a)]);
    assert.ok(elsewhere.every((s) => s.worker_id !== victimId));
    await Promise.all(elsewhere.map((s) => call(a, 'DELETE', `/v1/sessions/${s.session_id}`)));

    // Restarted with the same id while Docker kept its containers running.
    const restarted = await startWorker(victimId);
    assert.match(restarted.log, /re-adopted 1 live session/);
    const back = await eventually(async () => {
      const r = await call<ExecResult>(a, 'POST', `/v1/sessions/${id}/exec`, {
        command: 'cat note.txt',
      });
      return r.status === 200 ? r.body : undefined;
    }, 'the session answering again');
    assert.equal(back.stdout, 'kept\n');
    assert.ok((await healthyWorkers(b)).has(victimId));
    const containers = await containersOf(victimId);
    assert.ok(!containers.some((c) => stray.startsWith(c)), 'the unrecorded container was kept');
    assert.equal(containers.length, 2, 'one warm container and the re-adopted session');
    assert.equal((await call(b, 'DELETE', `/v1/sessions/${id}`)).status, 204);
  });

  test('Redis stopped: 503 at once, workers keep their sessions; Redis back: recovery without restarts', async () => {
    const session = await create(a);
    const owner = workers.get(session.worker_id)!;
    await redis.stop();

    const started = Date.now();
    const refused = await call<{ error: { code: string; message: string } }>(
      a,
      'POST',
      '/v1/sessions',
      {},
    );
    assert.ok(Date.now() - started < 3000, 'the coordinator hung on Redis');
    assert.deepEqual([refused.status, refused.body.error.code], [503, 'runtime_unavailable']);
    assert.match(refused.body.error.message, /Redis at 127\.0\.0\.1:\d+ does not answer/);
    assert.equal((await call(b, 'GET', `/v1/sessions/${session.session_id}`)).status, 503);
    const health = await call<{ status: string }>(b, 'GET', '/health');
    assert.deepEqual([health.status, health.body.status], [503, 'unhealthy']);

    // The owner still serves its session directly, but takes no new ones once its heartbeat lapsed.
    assert.equal(
      (await exec(owner.url, session.session_id, { command: 'echo direct' })).stdout,
      'direct\n',
    );
    await new Promise((r) => setTimeout(r, HEARTBEAT_TTL_MS + 200));
    const direct = await call<{ error: { code: string } }>(owner.url, 'POST', '/v1/sessions', {});
    assert.deepEqual([direct.status, direct.body.error.code], [503, 'capacity_exhausted']);

    await redis.resume(); // Empty: no persistence. Workers write their sessions back.
    const again = await eventually(async () => {
      const r = await call<ExecResult>(a, 'POST', `/v1/sessions/${session.session_id}/exec`, {
        command: 'echo back',
      });
      return r.status === 200 ? r.body : undefined;
    }, 'the old session through the coordinator');
    assert.equal(again.stdout, 'back\n');
    await eventually(
      async () => (await healthyWorkers(b)).size === 3,
      'three healthy workers again',
    );
    const fresh = await create(b);
    await call(a, 'DELETE', `/v1/sessions/${fresh.session_id}`);
    assert.equal((await call(b, 'DELETE', `/v1/sessions/${session.session_id}`)).status, 204);
  });
});

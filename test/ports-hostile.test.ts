import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadWorkerConfig } from '../packages/server/src/config/worker-config.js';
import { Worker } from '../packages/server/src/worker/worker.js';
import { call, exec } from './support/http.js';
import { docker } from './support/docker.js';

/**
 * A hostile agent floods the worker through a preview tunnel (data frames, never waiting for
 * acknowledgements): the worker ends that session's agent connection (410) and nothing else; the
 * other session of the same worker keeps working. The flood comes from an image built here: the
 * real agent behind a relay (fixtures/hostile_tunnel_agent.py), as sandbox code cannot reach the
 * agent's stdout under runc.
 */

const BASE_IMAGE = process.env.SANDPOOL_IMAGE ?? 'sandpool/sandbox:latest';
const HOSTILE_IMAGE = `sandpool/sandbox-hostile-tunnel:${randomBytes(4).toString('hex')}`;

describe('preview tunnels: a hostile agent floods', () => {
  let worker: Worker;
  let url: string;
  const logs: string[] = [];

  before(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sandpool-hostile-tunnel-'));
    try {
      await copyFile(
        fileURLToPath(new URL('./fixtures/hostile_tunnel_agent.py', import.meta.url)),
        path.join(dir, 'hostile_tunnel_agent.py'),
      );
      await writeFile(
        path.join(dir, 'Dockerfile'),
        [
          `FROM ${BASE_IMAGE}`,
          'COPY hostile_tunnel_agent.py /opt/sandpool/hostile_tunnel_agent.py',
          'CMD ["python3", "-I", "-S", "-B", "/opt/sandpool/hostile_tunnel_agent.py"]',
        ].join('\n'),
      );
      await docker('build', '-q', '-t', HOSTILE_IMAGE, dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(chunk.toString());
        done();
      },
    });
    worker = await Worker.create(
      {
        ...loadWorkerConfig({}, { SANDPOOL_IMAGE: HOSTILE_IMAGE, SANDPOOL_TEMPLATES: 'base' }),
        port: 0,
        workerId: `test-${randomBytes(4).toString('hex')}`,
        poolSize: 2,
        maxSessions: 3,
      },
      { log: pino({ level: 'warn' }, sink), onProgress: () => undefined },
    );
    url = await worker.listen();
  });

  after(async () => {
    await worker?.close();
    await docker('rmi', '-f', HOSTILE_IMAGE).catch(() => undefined);
  });

  test('only the flooding session ends; the worker and the other session go on', async () => {
    const sessions: { session_id: string; access_token: string }[] = [];
    for (let i = 0; i < 2; i++) {
      const created = await call<{ session_id: string; access_token: string }>(
        url,
        'POST',
        '/v1/sessions',
        {},
      );
      assert.equal(created.status, 201);
      sessions.push(created.body);
    }
    const [hostile, calm] = sessions as [(typeof sessions)[0], (typeof sessions)[0]];
    const target = new URL(url);
    // The client reads nothing: the worker stops acknowledging, and the agent floods on.
    const req = httpRequest({
      host: target.hostname,
      port: target.port,
      path: '/',
      headers: {
        host: `6666-${hostile.session_id}.localhost:${target.port}`,
        'x-access-token': hostile.access_token,
      },
    });
    req.on('response', (res) => res.pause());
    req.on('error', () => undefined);
    req.end();
    // (A paused client socket does not notice that the worker closed it: it reads nothing.)
    const deadline = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < deadline) {
      const probe = await call(url, 'POST', `/v1/sessions/${hostile.session_id}/exec`, {
        command: 'true',
      });
      status = probe.status;
      if (status === 410) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    req.destroy();
    assert.equal(status, 410);
    assert.ok(
      logs.some((l) => /unacknowledged tunnel bytes/.test(l)),
      `the worker said why: ${logs.join('')}`,
    );
    const ok = await exec(url, calm.session_id, { command: 'echo still here' });
    assert.equal(ok.stdout, 'still here\n');
    const health = await call<{ status: string }>(url, 'GET', '/health');
    assert.equal(health.body.status, 'healthy');
  });
});

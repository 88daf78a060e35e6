import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { Sandbox } from '@sandpool/client';
import { loadCoordinatorConfig } from '../packages/server/src/config/coordinator-config.js';
import { Coordinator } from '../packages/server/src/coordinator/coordinator.js';
import { call, exec } from './support/http.js';
import { runProcess } from './support/run-process.js';
import { TestRedis } from './support/redis-server.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

/**
 * Preview URLs end to end: servers started in a real sandbox (no network) reached through the
 * agent's tunnel, by path (`/v1/sessions/{id}/ports/{port}/…`) and by preview host
 * (`{port}-{id}.localhost`), on a worker and through a coordinator.
 */

// A WebSocket echo server for the sandbox's Node.js, without the ws module: the raw upgrade.
const WS_ECHO = String.raw`
const http = require('http'), crypto = require('crypto');
const server = http.createServer((q, s) => s.end('plain'));
server.on('upgrade', (req, socket) => {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + accept + '\r\n\r\n');
  let buf = Buffer.alloc(0);
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 6) {
      const op = buf[0] & 15, len = buf[1] & 127;
      if (len > 125 || buf.length < 6 + len) return;
      const mask = buf.subarray(2, 6), data = Buffer.from(buf.subarray(6, 6 + len));
      for (let i = 0; i < len; i++) data[i] ^= mask[i % 4];
      buf = buf.subarray(6 + len);
      if (op === 8) { socket.end(Buffer.from([0x88, 0])); return; }
      const out = Buffer.from('echo:' + data).subarray(0, 125);
      socket.write(Buffer.concat([Buffer.from([0x80 | op, out.length]), out]));
    }
  });
});
server.listen(8001, '127.0.0.1');
`;

// Chunked answers, 600 ms apart: streaming must show the first before the last is written.
const STREAMER = String.raw`
import http.server, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        self.send_response(200)
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        for i in range(int(self.path.strip('/') or 3)):
            chunk = ('part %d\n' % i).encode()
            self.wfile.write(b'%x\r\n%s\r\n' % (len(chunk), chunk))
            self.wfile.flush()
            time.sleep(0.6)
        self.wfile.write(b'0\r\n\r\n')
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', 8002), H).serve_forever()
`;

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A request to a server's loopback address under any Host (so *.localhost needs no resolver). */
function hostRequest(
  base: string,
  host: string,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method, headers: { host, ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

describe('preview URLs (ports) on a worker and through a coordinator', () => {
  let redis: TestRedis;
  let w: TestWorker;
  let coordinator: Coordinator;
  let c: string;
  let id: string;
  let token: string;
  const wPort = () => new URL(w.url).port;
  const cPort = () => new URL(c).port;
  const hostOf = (port: number, serverPort: string) => `${port}-${id}.localhost:${serverPort}`;

  before(async () => {
    redis = await TestRedis.start();
    w = await startWorker({ poolSize: 1, maxSessions: 4, redisUrl: redis.url });
    coordinator = await Coordinator.create({
      ...loadCoordinatorConfig({}, {}),
      port: 0,
      redisUrl: redis.url,
      logLevel: process.env.SANDPOOL_TEST_LOG_LEVEL ?? 'silent',
    });
    c = await coordinator.listen();
    await eventually(async () => {
      const health = (await (await fetch(`${c}/health`)).json()) as { healthy_workers: number };
      return health.healthy_workers >= 1;
    }, 'the worker at the coordinator');
    const created = await call<{ session_id: string; access_token: string }>(
      c,
      'POST',
      '/v1/sessions',
      { ttl_seconds: 300 },
    );
    assert.equal(created.status, 201);
    id = created.body.session_id;
    token = created.body.access_token;
    await exec(c, id, {
      command: `mkdir -p /tmp/site && echo 'hello from the sandbox' > /tmp/site/index.html && cat > /tmp/ws.js <<'EOF'\n${WS_ECHO}\nEOF\ncat > /tmp/stream.py <<'EOF'\n${STREAMER}\nEOF`,
    });
    for (const command of [
      'python3 -m http.server 8000 --bind 127.0.0.1 --directory /tmp/site',
      'node /tmp/ws.js',
      'python3 /tmp/stream.py',
    ]) {
      const started = await call(c, 'POST', `/v1/sessions/${id}/processes`, { command });
      assert.equal(started.status, 201, JSON.stringify(started.body));
    }
    for (const port of [8000, 8001, 8002]) {
      await eventually(async () => {
        const r = await call(c, 'PUT', `/v1/sessions/${id}/ports/${port}`, { public: false });
        if (r.status !== 200) return false;
        const probe = await hostRequest(w.url, hostOf(port, wPort()), '/0', {
          'x-access-token': token,
        });
        return probe.status !== 502;
      }, `a server on port ${port}`);
    }
  });

  after(async () => {
    await coordinator?.close();
    await w?.close();
    await redis?.stop();
  });

  test('the path form, with the API key, on the worker and through the coordinator', async () => {
    for (const base of [w.url, c]) {
      const r = await fetch(`${base}/v1/sessions/${id}/ports/8000/index.html?x=1`);
      assert.equal(r.status, 200);
      assert.equal(await r.text(), 'hello from the sandbox\n');
    }
  });

  test('the preview host is private: 401 without the token, 200 with either header', async () => {
    for (const port of [wPort(), cPort()]) {
      const base = port === wPort() ? w.url : c;
      const refused = await hostRequest(base, hostOf(8000, port), '/');
      assert.equal(refused.status, 401);
      const error = JSON.parse(refused.body) as { error: { code: string; message: string } };
      assert.equal(error.error.code, 'unauthorized');
      assert.match(error.error.message, /X-Access-Token/);
      const wrong = await hostRequest(base, hostOf(8000, port), '/', { 'x-access-token': 'nope' });
      assert.equal(wrong.status, 401);
      for (const header of ['x-access-token', 'e2b-traffic-access-token']) {
        const ok = await hostRequest(base, hostOf(8000, port), '/index.html', { [header]: token });
        assert.equal(ok.status, 200, `${header} on :${port}`);
        assert.equal(ok.body, 'hello from the sandbox\n');
      }
    }
  });

  test('a signed URL sets a host-only cookie and redirects without the token; expired ones fail', async () => {
    for (const base of [w.url, c]) {
      const signed = await call<{ url: string; expires_at: string }>(
        base,
        'POST',
        `/v1/sessions/${id}/ports/8000/url`,
        { ttl_seconds: 60 },
      );
      assert.equal(signed.status, 200);
      const url = new URL(signed.body.url);
      assert.equal(url.host, hostOf(8000, new URL(base).port));
      assert.ok(Date.parse(signed.body.expires_at) > Date.now() + 50_000);
      const first = await hostRequest(base, url.host, url.pathname + url.search);
      assert.equal(first.status, 302);
      assert.equal(first.headers.location, '/');
      const cookie = String(first.headers['set-cookie']);
      assert.match(cookie, /HttpOnly/);
      assert.doesNotMatch(cookie, /Domain=/i);
      const page = await hostRequest(base, url.host, '/index.html', {
        cookie: cookie.split(';')[0],
      });
      assert.equal(page.status, 200);
      assert.equal(page.body, 'hello from the sandbox\n');
    }
    // Signed like the server signs, but expired a second ago.
    const expires = Math.floor(Date.now() / 1000) - 1;
    const mac = createHmac('sha256', token)
      .update(`sandpool-preview:${id}:8000:${expires}`)
      .digest('base64url');
    const expired = await hostRequest(
      w.url,
      hostOf(8000, wPort()),
      `/?sandpool_preview_token=${expires}.${mac}`,
    );
    assert.equal(expired.status, 401);
    const expiredCookie = await hostRequest(w.url, hostOf(8000, wPort()), '/', {
      cookie: `sandpool_preview=${expires}.${mac}`,
    });
    assert.equal(expiredCookie.status, 401);
  });

  test('a public port needs no token, until it is private again', async () => {
    assert.equal(
      (await call(c, 'PUT', `/v1/sessions/${id}/ports/8000`, { public: true })).status,
      200,
    );
    assert.equal((await hostRequest(c, hostOf(8000, cPort()), '/')).status, 200);
    assert.equal((await hostRequest(w.url, hostOf(8000, wPort()), '/')).status, 200);
    assert.equal(
      (await call(c, 'PUT', `/v1/sessions/${id}/ports/8000`, { public: false })).status,
      200,
    );
    assert.equal((await hostRequest(c, hostOf(8000, cPort()), '/')).status, 401);
  });

  test('nothing listening: 502 port_not_listening in the error shape', async () => {
    for (const [base, port] of [
      [w.url, wPort()],
      [c, cPort()],
    ] as const) {
      const r = await hostRequest(base, hostOf(9, port), '/', { 'x-access-token': token });
      assert.equal(r.status, 502);
      const body = JSON.parse(r.body) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'port_not_listening');
      assert.match(
        body.error.message,
        /Nothing listens on port 9 in the session; start a server bound to 0\.0\.0\.0 or 127\.0\.0\.1/,
      );
    }
  });

  test('a streaming (chunked) answer arrives as it is written, through both servers', async () => {
    for (const base of [w.url, c]) {
      const started = Date.now();
      const url = new URL(base);
      const times = await new Promise<number[]>((resolve, reject) => {
        const seen: number[] = [];
        const req = httpRequest(
          {
            host: url.hostname,
            port: url.port,
            path: '/3',
            headers: { host: hostOf(8002, url.port), 'x-access-token': token },
          },
          (res) => {
            assert.equal(res.statusCode, 200);
            res.on('data', () => seen.push(Date.now() - started));
            res.on('end', () => {
              seen.push(Date.now() - started);
              resolve(seen);
            });
          },
        );
        req.on('error', reject);
        req.end();
      });
      const first = times[0];
      const last = times[times.length - 1];
      assert.ok(last - first >= 1000, `first part at ${first} ms, end at ${last} ms`);
    }
  });

  test('a WebSocket echo server in the sandbox, reached by the ws client', async () => {
    for (const [base, port] of [
      [w.url, wPort()],
      [c, cPort()],
    ] as const) {
      const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/`, {
        headers: { host: hostOf(8001, port), 'x-access-token': token },
      });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const replies: string[] = [];
      const got = new Promise<void>((resolve) =>
        ws.on('message', (data) => {
          replies.push((data as Buffer).toString());
          if (replies.length === 2) resolve();
        }),
      );
      ws.send('one');
      ws.send('two');
      await got;
      assert.deepEqual(replies, ['echo:one', 'echo:two']);
      ws.close();
      await new Promise((resolve) => ws.once('close', resolve));
      // Refused without the token: an HTTP answer, not an upgrade.
      const refused = new WebSocket(`${base.replace(/^http/, 'ws')}/`, {
        headers: { host: hostOf(8001, port) },
      });
      refused.on('error', () => undefined);
      const status = await new Promise<number>((resolve) => {
        refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        refused.once('open', () => resolve(101));
      });
      refused.terminate();
      assert.equal(status, 401);
    }
  });

  test('a preview origin is foreign to the API, and a preview host never reaches the API', async () => {
    const origin = `http://${hostOf(8000, wPort())}`;
    const api = await call(w.url, 'GET', '/v1/sessions', undefined, { origin });
    assert.equal(api.status, 403);
    assert.equal((api.body as { error: { code: string } }).error.code, 'forbidden_origin');
    const viaCoordinator = await call(c, 'GET', '/v1/sessions', undefined, {
      origin: `http://${hostOf(8000, cPort())}`,
    });
    assert.equal(viaCoordinator.status, 403);
    // Same-origin for the page: its /v1/sessions is the sandbox's server's (a 404 page there).
    const own = await hostRequest(w.url, hostOf(8000, wPort()), '/v1/sessions', {
      'x-access-token': token,
      origin,
    });
    assert.equal(own.status, 404);
    assert.doesNotMatch(own.body, /session_id/);
  });

  test('tunnels close when the client goes away', async () => {
    const url = new URL(w.url);
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: '/20',
          headers: { host: hostOf(8002, url.port), 'x-access-token': token },
        },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', () => undefined);
      req.once('error', reject);
      req.end();
    });
    await eventually(
      async () => (await metric(w.url, 'sandpool_tunnels_open')) === 0,
      'the tunnel to close',
    );
    assert.ok((await metric(w.url, 'sandpool_tunnel_bytes_total')) > 0);
  });

  test('latency: a preview request vs a direct exec (median of 30, loopback)', async () => {
    const preview: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < 30; i++) {
      let t = performance.now();
      const r = await hostRequest(w.url, hostOf(8000, wPort()), '/index.html', {
        'x-access-token': token,
      });
      preview.push(performance.now() - t);
      assert.equal(r.status, 200);
      t = performance.now();
      await exec(w.url, id, { command: 'cat /tmp/site/index.html' });
      direct.push(performance.now() - t);
    }
    console.log(
      `# preview GET median ${median(preview).toFixed(2)} ms, exec median ${median(direct).toFixed(2)} ms (worker, loopback, n=30)`,
    );
  });

  test('the SDK: getHost and previewUrl, through the coordinator', async () => {
    const sandbox = await Sandbox.connect(id, { url: c });
    const host = sandbox.getHost(8000);
    assert.equal(host, hostOf(8000, cPort()));
    const withToken = await hostRequest(c, host, '/index.html', {
      'x-access-token': sandbox.accessToken,
    });
    assert.equal(withToken.body, 'hello from the sandbox\n');
    const { url, expiresAt } = await sandbox.previewUrl(8000, { ttlSeconds: 30 });
    assert.ok(expiresAt.getTime() > Date.now());
    const signed = new URL(url);
    assert.equal(signed.host, host);
    assert.equal((await hostRequest(c, signed.host, signed.pathname + signed.search)).status, 302);
    await sandbox.setPortPublic(8000, true);
    assert.equal((await hostRequest(c, host, '/')).status, 200);
    await sandbox.setPortPublic(8000, false);
    assert.equal((await hostRequest(c, host, '/')).status, 401);
  });

  test('the Python client: get_host, preview_url, set_port_public', async () => {
    const source = [
      'import json, sys, urllib.request',
      'from sandpool_client import SandboxClient',
      `client = SandboxClient(url=${JSON.stringify(c)}, session_id=${JSON.stringify(id)})`,
      'host = client.get_host(8000)',
      'signed = client.preview_url(8000, ttl_seconds=30)',
      'request = urllib.request.Request("http://127.0.0.1:%s/index.html" % host.split(":")[1],',
      '    headers={"Host": host, "X-Access-Token": client.session["access_token"]})',
      'body = urllib.request.urlopen(request).read().decode()',
      'client.set_port_public(8000, False)',
      'print(json.dumps({"host": host, "url": signed["url"], "body": body}))',
    ].join('\n');
    const run = await runProcess('python3', ['-c', source], {
      cwd: new URL('../clients/python/', import.meta.url).pathname,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1' },
    });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { host: string; url: string; body: string };
    assert.equal(out.host, hostOf(8000, cPort()));
    assert.equal(new URL(out.url).host, out.host);
    assert.equal(out.body, 'hello from the sandbox\n');
  });

  test('the session ends: its open WebSocket closes, its tunnels are gone', async () => {
    const ws = new WebSocket(`${w.url.replace(/^http/, 'ws')}/`, {
      headers: { host: hostOf(8001, wPort()), 'x-access-token': token },
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    assert.equal(await metric(w.url, 'sandpool_tunnels_open'), 1);
    const closed = new Promise((resolve) => ws.once('close', resolve));
    ws.on('error', () => undefined);
    assert.equal((await call(c, 'DELETE', `/v1/sessions/${id}`)).status, 204);
    await closed;
    await eventually(
      async () => (await metric(w.url, 'sandpool_tunnels_open')) === 0,
      'the tunnels to go',
    );
    const gone = await hostRequest(w.url, hostOf(8000, wPort()), '/', { 'x-access-token': token });
    assert.equal(gone.status, 404);
  });
});

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { CredentialRules } from './credential-rules.js';
import { EgressAudit } from './egress-audit.js';
import { EgressPolicy } from './egress-policy.js';
import { EgressProxy } from './egress-proxy.js';
import { SpecialRanges } from './special-ranges.js';

/**
 * The proxy over real loopback sockets (the Docker network, firewall and TLS interception are
 * exercised in test/egress/). Loopback is a special range, so the policies name it by address.
 */
describe('EgressProxy', () => {
  let upstream: Server;
  let upstreamPort: number;
  let proxy: EgressProxy;
  let proxyPort: number;
  let audit: EgressAudit;
  const registry = new Registry();
  let policy = EgressPolicy.parse({ allow_out: ['up.test:*', '127.0.0.1:*'] });
  const held: (() => void)[] = [];

  before(async () => {
    upstream = createServer((req, res) => {
      if (req.url === '/hold') return void held.push(() => res.end('released'));
      res.end(JSON.stringify({ host: req.headers.host, url: req.url, key: req.headers['x-key'] }));
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    upstreamPort = (upstream.address() as AddressInfo).port;
    audit = new EgressAudit({ log: pino({ level: 'silent' }), registry });
    proxy = new EgressProxy({
      sessionId: 'sb_test',
      host: '127.0.0.1',
      port: 0,
      policy: () => policy,
      resolver: async (host) => {
        if (host === 'up.test' || host === 'other.test')
          return [{ address: '127.0.0.1', family: 4 }];
        throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      },
      special: new SpecialRanges(),
      audit,
      limits: { maxConnections: 2, bytesPerSecond: 0, connectTimeoutMs: 2000 },
      credentials: CredentialRules.fromJson('[{"host":"up.test:*","headers":{"X-Key":"k"}}]', {}),
    });
    proxyPort = (await proxy.listen()).port;
  });
  after(async () => {
    await proxy.close();
    await proxy.close();
    upstream.close();
  });

  const viaProxy = (url: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: proxyPort, path: url, headers }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  const tunnel = (authority: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(proxyPort, '127.0.0.1', () =>
        socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`),
      );
      let data = '';
      socket.on('data', (c: Buffer) => {
        data += c.toString();
        if (data.startsWith('HTTP/1.1 200') && data.includes('\r\n\r\n') && !data.includes('GET')) {
          socket.write('GET /t HTTP/1.0\r\nHost: forged.test\r\n\r\n');
          data += 'GET';
        }
      });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });

  it('forwards plain HTTP to the resolved address with the checked Host and rule headers', async () => {
    const r = await viaProxy(`http://up.test:${upstreamPort}/path?q=1`, { host: 'forged.test' });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), {
      host: `up.test:${upstreamPort}`,
      url: '/path?q=1',
      key: 'k',
    });
  });

  it('tunnels CONNECT to the resolved address', async () => {
    const data = await tunnel(`127.0.0.1:${upstreamPort}`);
    assert.match(data, /^HTTP\/1\.1 200 Connection Established/);
    assert.match(data, /"host":"forged.test"/); // An opaque tunnel: the upstream is the checked address.
  });

  it('refuses names outside the policy, unresolvable names and origin-form requests', async () => {
    assert.match(
      await tunnel('other.test:443'),
      /^HTTP\/1\.1 403 Forbidden[\s\S]*not in the session's allow_out/,
    );
    policy = EgressPolicy.parse({ allow_out: ['other.test:*', 'nowhere.test'] });
    assert.match(await tunnel(`other.test:${upstreamPort}`), /403[\s\S]*private, loopback/);
    assert.match(await tunnel('nowhere.test:443'), /^HTTP\/1\.1 502[\s\S]*did not resolve/);
    assert.match(await tunnel('no-port'), /^HTTP\/1\.1 400/);
    assert.equal((await viaProxy('/relative')).status, 400);
    policy = EgressPolicy.parse({ allow_out: ['up.test:*', '127.0.0.1:*'] });
  });

  it('holds a session to its connection limit', async () => {
    const first = viaProxy(`http://up.test:${upstreamPort}/hold`);
    const second = viaProxy(`http://up.test:${upstreamPort}/hold`);
    while (held.length < 2) await new Promise((r) => setTimeout(r, 10));
    const third = await viaProxy(`http://up.test:${upstreamPort}/x`);
    assert.equal(third.status, 429);
    for (const release of held.splice(0)) release();
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
  });

  it('records every decision in the audit and the metrics', async () => {
    const entries = audit.entries('sb_test');
    assert.ok(
      entries.some(
        (e) => e.decision === 'allowed' && e.host === 'up.test' && e.intercepted && e.bytes_in > 0,
      ),
    );
    assert.ok(entries.some((e) => e.decision === 'denied' && e.reason === 'not_allowed'));
    assert.ok(entries.some((e) => e.reason === 'special_address' && e.address === '127.0.0.1'));
    assert.ok(entries.some((e) => e.reason === 'connection_limit'));
    const metrics = await registry.metrics();
    assert.match(
      metrics,
      /sandpool_egress_decisions_total\{decision="denied",reason="not_allowed"\} \d/,
    );
    assert.match(metrics, /sandpool_egress_bytes_total\{direction="in"\} \d/);
  });

  it('drops connections from any peer but the sandbox', async () => {
    const strict = new EgressProxy({
      sessionId: 'sb_other',
      host: '127.0.0.1',
      port: 0,
      peerAddress: () => '127.0.0.2',
      policy: () => policy,
      resolver: async () => [],
      special: new SpecialRanges(),
      audit,
      limits: { maxConnections: 2, bytesPerSecond: 0, connectTimeoutMs: 2000 },
      credentials: CredentialRules.none(),
    });
    const { port } = await strict.listen();
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write('CONNECT up.test:80 HTTP/1.1\r\n\r\n');
    await once(socket, 'close');
    await strict.close();
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EgressNotPermittedError, Sandbox } from '@sandpool/client';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { call, createSession, exec } from '../support/http.js';
import { containersOf, docker } from '../support/docker.js';
import { TestRedis } from '../support/redis-server.js';
import { SandpoolProcess } from '../support/sandpool-process.js';
import { loadCoordinatorConfig } from '../../packages/server/src/config/coordinator-config.js';
import { Coordinator } from '../../packages/server/src/coordinator/coordinator.js';
import {
  DNS_SERVER,
  egressTestImage,
  HOSTS,
  METADATA_NAME,
  startWorld,
  worldUnavailable,
  WHEEL_PROJECT,
  type World,
} from './egress-world.js';

const unavailable = await worldUnavailable();
const SECRET = `sk-test-${randomBytes(12).toString('hex')}`;
const ALLOW_MAX =
  'pypi.test,allowed.test,denied.test,neighbour.test,metadata.test,*.test:*,198.18.14.0/24';

interface AuditEntry {
  host: string;
  port: number;
  decision: string;
  rule?: string;
  reason?: string;
  address?: string;
  intercepted: boolean;
  bytes_in: number;
}

describe('egress by domain (issue 14)', { skip: unavailable ?? false }, () => {
  let world: World;
  let w: TestWorker;
  let image: string;

  before(async () => {
    image = await egressTestImage();
    world = await startWorld();
    process.env.SANDPOOL_EGRESS_TEST_SECRET = SECRET;
    const credentials = join(world.dir, 'credentials.json');
    writeFileSync(
      credentials,
      JSON.stringify([
        {
          host: 'allowed.test',
          headers: { Authorization: 'Bearer ${env:SANDPOOL_EGRESS_TEST_SECRET}' },
        },
      ]),
    );
    w = await startWorker({
      image,
      poolSize: 1,
      egressAllowMax: ALLOW_MAX,
      egressDnsServers: DNS_SERVER,
      egressTrustFile: world.caFile,
      egressCredentialsFile: credentials,
    });
  });

  after(async () => {
    await w?.close();
    delete process.env.SANDPOOL_EGRESS_TEST_SECRET;
    await world?.stop();
    if (w) {
      assert.deepEqual(await containersOf(w.workerId), []);
      const networks = await docker(
        'network',
        'ls',
        '-q',
        '--filter',
        `label=sandpool.worker=${w.workerId}`,
      );
      assert.equal(networks.trim(), '', 'session networks are removed');
    }
  });

  const logOf = async (id: string) =>
    (await call<{ entries: AuditEntry[] }>(w.url, 'GET', `/v1/sessions/${id}/network/log`)).body
      .entries;
  const servedBy = (name: string) => world.lines.filter((l) => l.served_by === name);
  const py = (code: string) => ({ argv: ['python3', '-c', code] });

  test('pip installs a wheel when the index is allowed, and fails fast when it is not', async () => {
    const pip = `pip install --no-cache-dir --retries 0 --timeout 5 --target /tmp/pkgs --index-url https://pypi.test/simple/ ${WHEEL_PROJECT}`;
    const allowed = await createSession(w.url, {
      network: { allow_out: ['pypi.test'] },
    });
    const ok = await exec(w.url, allowed, {
      command: `${pip} && PYTHONPATH=/tmp/pkgs python3 -c 'import sandpool_demo; print(sandpool_demo.MESSAGE)'`,
      timeout_ms: 120_000,
    });
    assert.equal(ok.exit_code, 0, ok.stderr);
    assert.match(ok.stdout, /installed through the egress proxy/);
    const log = await logOf(allowed);
    assert.ok(
      log.some((e) => e.host === 'pypi.test' && e.decision === 'allowed' && !e.intercepted),
      JSON.stringify(log),
    );

    const other = await createSession(w.url, { network: { allow_out: ['allowed.test'] } });
    const started = Date.now();
    const refused = await exec(w.url, other, { command: pip, timeout_ms: 60_000 });
    assert.notEqual(refused.exit_code, 0);
    assert.ok(Date.now() - started < 30_000, 'pip gives up quickly');
    assert.ok(
      (await logOf(other)).some(
        (e) => e.host === 'pypi.test' && e.decision === 'denied' && e.reason === 'not_allowed',
      ),
    );
  });

  test('an allowed HTTPS host answers; a denied one fails fast with a clear error', async () => {
    const id = await createSession(w.url, {
      network: { allow_out: ['pypi.test', 'allowed.test'], deny_out: ['denied.test'] },
    });
    const ok = await exec(w.url, id, { command: 'curl -sS https://pypi.test/hello' });
    assert.equal(ok.exit_code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { served_by: string }).served_by, 'pypi.test');
    const t0 = Date.now();
    const denied = await exec(w.url, id, { command: 'curl -sS https://denied.test/hello' });
    assert.ok(Date.now() - t0 < 5000, 'refused at once, not after a connect timeout'); // exec + curl on a loaded machine
    assert.notEqual(denied.exit_code, 0);
    assert.match(denied.stderr, /403/);
    // Plain HTTP gets the proxy's reason in the body.
    const plain = await exec(w.url, id, { command: 'curl -sS http://neighbour.test/' });
    assert.match(
      plain.stdout,
      /sandpool egress: neighbour\.test:80 is not in the session's allow_out list/,
    );
    const log = await logOf(id);
    assert.ok(
      log.some(
        (e) =>
          e.host === 'denied.test' && e.rule === 'denied.test' && e.reason === 'denied_by_rule',
      ),
    );
    assert.ok(
      log.some(
        (e) =>
          e.host === 'pypi.test' &&
          e.decision === 'allowed' &&
          e.address === HOSTS['pypi.test'] &&
          e.bytes_in > 0,
      ),
    );
    assert.equal(servedBy('denied.test').length, 0, 'the denied host never saw a request');
  });

  test('a forged SNI or Host header cannot reach a denied host', async () => {
    const id = await createSession(w.url, {
      network: { allow_out: ['pypi.test', 'allowed.test'] },
    });
    // Tunnel to an allowed name, then speak TLS with the denied name as SNI and Host.
    const forged = await exec(
      w.url,
      id,
      py(`
import os, socket, ssl
proxy = os.environ["HTTPS_PROXY"].split("//")[1].split(":")
s = socket.create_connection((proxy[0], int(proxy[1])), 5)
s.sendall(b"CONNECT pypi.test:443 HTTP/1.1\\r\\nHost: pypi.test:443\\r\\n\\r\\n")
assert s.recv(4096).startswith(b"HTTP/1.1 200")
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname="denied.test")
t.sendall(b"GET /forged HTTP/1.0\\r\\nHost: denied.test\\r\\nConnection: close\\r\\n\\r\\n")
data = b""
while True:
    chunk = t.recv(65536)
    if not chunk: break
    data += chunk
print(data.split(b"\\r\\n\\r\\n", 1)[1].decode())
`),
    );
    assert.equal(forged.exit_code, 0, forged.stderr);
    assert.equal((JSON.parse(forged.stdout) as { served_by: string }).served_by, 'pypi.test');
    // Plain HTTP with a forged Host: the proxy sends the Host it checked.
    const host = await exec(w.url, id, {
      command: "curl -sS -H 'Host: denied.test' http://allowed.test/forged",
    });
    assert.equal(host.exit_code, 0, host.stderr + host.stdout);
    const echoed = JSON.parse(host.stdout) as { served_by: string; host_header: string };
    assert.equal(echoed.served_by, 'allowed.test');
    assert.equal(echoed.host_header, 'allowed.test');
    assert.equal(servedBy('denied.test').length, 0);
  });

  test("an allowed name's neighbour by address fails, through the proxy and directly", async () => {
    const id = await createSession(w.url, { network: { allow_out: ['allowed.test'] } });
    const viaProxy = await exec(w.url, id, {
      command: `curl -sS https://${HOSTS['neighbour.test']}/`,
    });
    assert.notEqual(viaProxy.exit_code, 0);
    assert.match(viaProxy.stderr, /403/);
    const direct = await exec(
      w.url,
      id,
      py(`
import socket, time
for address in ["${HOSTS['neighbour.test']}", "${HOSTS['allowed.test']}", "1.1.1.1"]:
    t = time.time()
    try:
        socket.create_connection((address, 443), 5); print("connected", address)
    except OSError as e:
        print(address, e.errno, round(time.time() - t, 2))
`),
    );
    for (const line of direct.stdout.trim().split('\n')) {
      const [, errno, seconds] = line.split(' ');
      assert.equal(errno, '101', `ENETUNREACH, not a hang: ${line}`); // no route
      assert.ok(Number(seconds) < 1, line);
    }
    assert.equal(servedBy('neighbour.test').length, 0);
  });

  test('metadata-style and private addresses are refused unless an address rule names them', async () => {
    const id = await createSession(w.url, {
      network: { allow_out: [METADATA_NAME, 'allowed.test'] },
    });
    const byName = await exec(w.url, id, {
      command: `curl -sS http://${METADATA_NAME}/latest/meta-data/`,
    });
    assert.match(byName.stdout, /private, loopback, link-local or metadata address/);
    const byAddress = await exec(w.url, id, {
      command: 'curl -sS http://169.254.169.254/latest/meta-data/',
    });
    assert.match(byAddress.stdout, /not in the session's allow_out list/);
    const worker = new URL(w.url);
    const api = await exec(w.url, id, {
      // NO_PROXY keeps the sandbox's own loopback local: unset it to ask the proxy.
      command: `env -u NO_PROXY -u no_proxy curl -sS http://127.0.0.1:${worker.port}/v1/sessions`,
    });
    assert.match(api.stdout, /sandpool egress/);
    const log = await logOf(id);
    assert.ok(
      log.some(
        (e) =>
          e.host === METADATA_NAME &&
          e.reason === 'special_address' &&
          e.address === '169.254.169.254',
      ),
    );
  });

  test('DNS inside the sandbox answers nothing, fast; other UDP is refused', async () => {
    const id = await createSession(w.url, { network: { allow_out: ['allowed.test'] } });
    const random = `exfil-${randomBytes(6).toString('hex')}.test`;
    const r = await exec(
      w.url,
      id,
      py(`
import socket, time
for name in ["${random}", "allowed.test"]:
    t = time.time()
    try:
        print(name, socket.getaddrinfo(name, 443))
    except socket.gaierror as e:
        print(name, "nothing", round(time.time() - t, 1))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
try:
    u.connect(("${DNS_SERVER}", 53)); u.send(b"x" * 12); u.recv(512); print("udp answered")
except OSError as e:
    print("udp", type(e).__name__)
`),
    );
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', new RegExp(`^${random} nothing`));
    assert.match(lines[1] ?? '', /^allowed\.test nothing/);
    for (const line of lines.slice(0, 2)) assert.ok(Number(line.split(' ')[2]) <= 3, line);
    assert.match(lines[2] ?? '', /^udp (OSError|ConnectionRefusedError|TimeoutError)/);
    assert.doesNotMatch(lines[2] ?? '', /answered/);
    assert.equal(world.lines.filter((l) => l.kind === 'dns' && l.name === random).length, 0);
  });

  test('an injected header arrives upstream and is visible nowhere inside the sandbox', async () => {
    const id = await createSession(w.url, { network: { allow_out: ['allowed.test'] } });
    const r = await exec(w.url, id, { command: 'curl -sS https://allowed.test/with-credentials' });
    assert.equal(r.exit_code, 0, r.stderr);
    const upstream = servedBy('allowed.test').find((l) => l.url === '/with-credentials');
    assert.equal((upstream?.headers as Record<string, string>).authorization, `Bearer ${SECRET}`);
    const search = await exec(w.url, id, {
      command: `env; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n'; grep -rs -- '${SECRET.slice(0, 12)}' /home /tmp /etc /opt /proc/[0-9]*/environ; true`,
    });
    assert.doesNotMatch(search.stdout + search.stderr, new RegExp(SECRET.slice(8)));
    assert.ok((await logOf(id)).some((e) => e.host === 'allowed.test' && e.intercepted));
  });

  test('git and Node reach allowed hosts through the proxy or fail closed', async () => {
    const id = await createSession(w.url, {
      network: { allow_out: ['allowed.test', 'pypi.test'] },
    });
    await exec(w.url, id, {
      command: 'git ls-remote https://pypi.test/repo.git; true',
      timeout_ms: 30_000,
    });
    assert.ok(
      servedBy('pypi.test').some((l) =>
        String((l.headers as Record<string, string>)['user-agent']).startsWith('git/'),
      ),
      'git went through the proxy',
    );
    const node = await exec(w.url, id, {
      command: `node -e "fetch('https://pypi.test/node').then(r => r.text()).then(t => console.log('ok', t), e => { console.log('failed', e.cause?.code ?? e.message); process.exit(3); })"`,
      timeout_ms: 30_000,
    });
    // Node 22.21+ and 24 follow NODE_USE_ENV_PROXY; older releases ignore the proxy and fail closed.
    if (node.exit_code === 0) assert.match(node.stdout, /pypi\.test/);
    else assert.match(node.stdout, /failed (EAI_AGAIN|ENOTFOUND|ENETUNREACH)/);
  });

  test('the policy is bounded by --egress-allow-max, validated, readable and changeable', async () => {
    const beyond = await call<{ error: { code: string; message: string } }>(
      w.url,
      'POST',
      '/v1/sessions',
      {
        network: { allow_out: ['example.com'] },
      },
    );
    assert.equal(beyond.status, 403);
    assert.equal(beyond.body.error.code, 'egress_not_permitted');
    assert.match(beyond.body.error.message, /"example\.com"/);
    const bad = await call<{ error: { code: string } }>(w.url, 'POST', '/v1/sessions', {
      network: { allow_out: ['bad name!'] },
    });
    assert.equal(bad.status, 400);
    const id = await createSession(w.url, {
      network: { allow_out: ['pypi.test', 'allowed.test'] },
    });
    const read = await call<{ network: { allow_out: string[] } }>(
      w.url,
      'GET',
      `/v1/sessions/${id}/network`,
    );
    assert.deepEqual(read.body.network.allow_out, ['pypi.test', 'allowed.test']);
    assert.equal((await exec(w.url, id, { command: 'curl -sS https://pypi.test/a' })).exit_code, 0);
    const put = await call(w.url, 'PUT', `/v1/sessions/${id}/network`, {
      allow_out: ['allowed.test'],
    });
    assert.equal(put.status, 200);
    assert.notEqual(
      (await exec(w.url, id, { command: 'curl -sS https://pypi.test/b' })).exit_code,
      0,
    );
    const widen = await call<{ error: { code: string } }>(
      w.url,
      'PUT',
      `/v1/sessions/${id}/network`,
      {
        allow_out: ['*'],
      },
    );
    assert.equal(widen.body.error.code, 'egress_not_permitted');
    const plain = await createSession(w.url);
    const noNet = await call<{ network: null }>(w.url, 'GET', `/v1/sessions/${plain}/network`);
    assert.equal(noNet.body.network, null);
    const late = await call<{ error: { code: string } }>(
      w.url,
      'PUT',
      `/v1/sessions/${plain}/network`,
      {
        allow_out: ['allowed.test'],
      },
    );
    assert.equal(late.status, 400);
  });

  test("a sandbox reaches neither the worker nor another session's proxy", async () => {
    const a = await createSession(w.url, { network: { allow_out: ['allowed.test'] } });
    const b = await createSession(w.url, { network: { allow_out: ['pypi.test'] } });
    const proxyOfB = (await exec(w.url, b, { command: 'echo $HTTPS_PROXY' })).stdout.trim();
    const gatewayOfA = (await exec(w.url, a, { command: 'echo $HTTPS_PROXY' })).stdout
      .trim()
      .split('//')[1]
      ?.split(':')[0];
    const worker = new URL(w.url);
    const r = await exec(w.url, a, {
      command: [
        // B's proxy would allow pypi.test: it must not serve A.
        `curl -sS -m 5 -x ${proxyOfB} https://pypi.test/from-a; echo "b-proxy=$?"`,
        `curl -sS -m 5 --noproxy '*' http://${gatewayOfA}:${worker.port}/health; echo "worker=$?"`,
        `curl -sS -m 5 --noproxy '*' http://${gatewayOfA}:22/; echo "ssh=$?"`,
      ].join('; '),
    });
    assert.match(r.stdout, /b-proxy=(7|35|52|56)\b/);
    assert.match(r.stdout, /worker=7\b/); // connection refused at once
    assert.match(r.stdout, /ssh=7\b/);
    assert.equal(servedBy('pypi.test').filter((l) => l.url === '/from-a').length, 0);
  });
});

// Under gVisor as provisioned (runsc --network=none) a sandbox has no interface but lo: a session
// with network must still be created and must fail closed, reaching nothing.
const runtimes = await docker('info', '--format', '{{json .Runtimes}}').catch(() => '{}');
describe(
  'egress under gVisor (runsc)',
  {
    skip:
      unavailable ??
      (runtimes.includes('"runsc"') ? false : 'runsc is not registered with the engine'),
  },
  () => {
    let world: World;
    let w: TestWorker;

    before(async () => {
      const image = await egressTestImage();
      world = await startWorld();
      w = await startWorker({
        image,
        poolSize: 1,
        ociRuntime: 'runsc',
        egressAllowMax: ALLOW_MAX,
        egressDnsServers: DNS_SERVER,
        egressTrustFile: world.caFile,
      });
    });
    after(async () => {
      await w?.close();
      await world?.stop();
      if (w) assert.deepEqual(await containersOf(w.workerId), []);
    });

    test('a session with network runs in gVisor and reaches nothing but what its proxy allows', async () => {
      const id = await createSession(w.url, { network: { allow_out: ['pypi.test'] } });
      const r = await exec(w.url, id, {
        command: `dmesg | head -1; curl -sS -m 10 https://pypi.test/gvisor; echo "allowed=$?"; curl -sS -m 10 https://denied.test/; echo "denied=$?"; curl -sS -m 5 --noproxy '*' https://${HOSTS['denied.test']}/; echo "direct=$?"`,
        timeout_ms: 60_000,
      });
      assert.match(r.stdout, /gVisor/);
      assert.doesNotMatch(r.stdout, /denied=0|direct=0/);
      const reached = world.lines.filter((l) => l.kind === 'http');
      // With runsc's networking the allowed host answers; with --network=none nothing is reached.
      if (/allowed=0/.test(r.stdout)) {
        assert.ok(reached.every((l) => l.served_by === 'pypi.test'));
      } else {
        assert.equal(reached.length, 0);
      }
    });
  },
);

// Distributed mode: the policy travels through the coordinator, and a worker killed and restarted
// with the same id re-adopts the session with its (changed) policy and a new proxy.
describe(
  'egress through the coordinator and across a worker restart',
  { skip: unavailable ?? false },
  () => {
    let world: World;
    let redis: TestRedis;
    let coordinator: Coordinator;
    let c: string;
    let worker: SandpoolProcess | undefined;
    const workerId = `egress-${randomBytes(3).toString('hex')}`;
    let args: string[];

    before(async () => {
      const image = await egressTestImage();
      world = await startWorld();
      redis = await TestRedis.start();
      args = [
        'serve',
        '--port',
        '0',
        '--pool-size',
        '1',
        '--worker-id',
        workerId,
        '--image',
        image,
        '--redis',
        redis.url,
        '--heartbeat-interval-ms',
        '500',
        '--heartbeat-ttl-ms',
        '2000',
        '--egress-allow-max',
        ALLOW_MAX,
        '--egress-dns-servers',
        DNS_SERVER,
        '--egress-trust-file',
        world.caFile,
        '--log-level',
        'warn',
      ];
      worker = await SandpoolProcess.start(args);
      coordinator = await Coordinator.create({
        ...loadCoordinatorConfig({}, {}),
        port: 0,
        redisUrl: redis.url,
        logLevel: 'silent',
      });
      c = await coordinator.listen();
      for (let i = 0; i < 100; i++) {
        const health = await call<{ workers?: { healthy: boolean }[] }>(c, 'GET', '/health');
        if (health.body.workers?.some((x) => x.healthy)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    });

    after(async () => {
      await coordinator?.close();
      await worker?.stop('SIGTERM');
      await redis?.stop();
      await world?.stop();
      assert.deepEqual(await containersOf(workerId), []);
      const networks = await docker(
        'network',
        'ls',
        '-q',
        '--filter',
        `label=sandpool.worker=${workerId}`,
      );
      assert.equal(networks.trim(), '', 'session networks are removed');
    });

    test('create, read, change and audit through the coordinator; a restarted worker keeps the policy', async () => {
      const id = await createSession(c, { network: { allow_out: ['pypi.test'] } });
      assert.equal((await exec(c, id, { command: 'curl -sS https://pypi.test/one' })).exit_code, 0);
      const put = await call(c, 'PUT', `/v1/sessions/${id}/network`, {
        allow_out: ['allowed.test'],
      });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      const log = await call<{ entries: AuditEntry[] }>(c, 'GET', `/v1/sessions/${id}/network/log`);
      assert.ok(log.body.entries.some((e) => e.host === 'pypi.test' && e.decision === 'allowed'));

      await worker?.stop('SIGKILL');
      worker = await SandpoolProcess.start(args);
      assert.match(worker.log, /re-adopted 1 live session/);
      let read: { status: number; body: { network?: { allow_out: string[] } } } = {
        status: 0,
        body: {},
      };
      for (let i = 0; i < 100 && read.status !== 200; i++) {
        read = await call(c, 'GET', `/v1/sessions/${id}/network`);
        if (read.status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(read.body.network?.allow_out, ['allowed.test']);
      const after = await exec(c, id, {
        command:
          'curl -sS https://allowed.test/after; echo "allowed=$?"; curl -sS https://pypi.test/two; echo "pypi=$?"',
      });
      assert.match(after.stdout, /allowed=0/);
      assert.doesNotMatch(after.stdout, /pypi=0/);
      assert.equal(world.lines.filter((l) => l.url === '/two').length, 0);
      assert.equal((await call(c, 'DELETE', `/v1/sessions/${id}`)).status, 204);
    });
  },
);

describe(
  'egress on the trunk: SDK, template defaults, reconciler',
  { skip: unavailable ?? false },
  () => {
    let w: TestWorker;

    before(async () => {
      w = await startWorker({
        image: await egressTestImage(),
        poolSize: 1,
        egressAllowMax: 'pypi.test,allowed.test',
        egressTemplateDefaults: 'base=pypi.test',
        // Rounds run when the test asks; an unowned container would go at once.
        orphanGraceMs: 0,
        reconcileIntervalMs: 3_600_000,
      });
    });
    after(async () => {
      await w?.close();
      if (w) assert.deepEqual(await containersOf(w.workerId), []);
    });

    const networkOf = async (id: string) =>
      (
        await call<{ network: { allow_out: string[]; deny_out?: string[] } | null }>(
          w.url,
          'GET',
          `/v1/sessions/${id}/network`,
        )
      ).body.network;
    const sessionNetworks = async () =>
      (
        await docker('network', 'ls', '-q', '--filter', `label=sandpool.worker=${w.workerId}`)
      ).trim();

    test('the SDK asks for network, the template default applies, the reconciler keeps both', async () => {
      const asked = await Sandbox.create({
        url: w.url,
        network: { allowOut: ['allowed.test'], denyOut: ['pypi.test'] },
      });
      // No `network`: the session's real template (`base`) brings its default list.
      const defaulted = await Sandbox.create({ url: w.url });
      try {
        assert.deepEqual(await networkOf(asked.sessionId), {
          allow_out: ['allowed.test'],
          deny_out: ['pypi.test'],
        });
        assert.deepEqual((await networkOf(defaulted.sessionId))?.allow_out, ['pypi.test']);
        const before = await containersOf(w.workerId);
        // Containers started outside the pool are owned: with no grace, a second round would
        // remove an unowned container (the first only notes it).
        assert.equal(await w.worker.reconciler.runOnce(), 0);
        assert.equal(await w.worker.reconciler.runOnce(), 0);
        assert.deepEqual(await containersOf(w.workerId), before);
        for (const sandbox of [asked, defaulted]) {
          const r = await sandbox.exec('echo "$HTTPS_PROXY"');
          assert.match(r.stdout, /^http:\/\/198\.19\.\d+\.\d+:3128\n$/);
        }
        await assert.rejects(
          Sandbox.create({
            url: w.url,
            network: { allowOut: ['example.com'] },
            createTimeoutMs: 0,
          }),
          (error: unknown) =>
            error instanceof EgressNotPermittedError && /"example\.com"/.test(error.message),
        );
      } finally {
        await asked.close();
        await defaulted.close();
      }
      // DELETE answers once the container is stopped; the network goes after its removal.
      const deadline = Date.now() + 15_000;
      while ((await sessionNetworks()) !== '' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      assert.equal(await sessionNetworks(), '', 'session networks are removed behind the delete');
    });

    test('a leftover session network is swept by the reconciler', async () => {
      const name = `sandpool-egress-sb_leftover${randomBytes(4).toString('hex')}`;
      await docker(
        'network',
        'create',
        '--internal',
        '--label',
        'sandpool.managed=true',
        '--label',
        `sandpool.worker=${w.workerId}`,
        '--label',
        'sandpool.egress=true',
        '--label',
        'sandpool.session=sb_gone',
        name,
      );
      try {
        await w.worker.reconciler.runOnce();
        assert.equal(await sessionNetworks(), '');
      } finally {
        await docker('network', 'rm', name).catch(() => undefined);
      }
    });
  },
);

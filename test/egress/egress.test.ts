import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { call, createSession, exec } from '../support/http.js';
import { containersOf, docker } from '../support/docker.js';
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
const ALLOW_MAX = 'pypi.test,allowed.test,denied.test,neighbour.test,metadata.test,*.test:*,198.18.14.0/24';

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
        { host: 'allowed.test', headers: { Authorization: 'Bearer ${env:SANDPOOL_EGRESS_TEST_SECRET}' } },
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
      const networks = await docker('network', 'ls', '-q', '--filter', `label=sandpool.worker=${w.workerId}`);
      assert.equal(networks.trim(), '', 'session networks are removed');
    }
  });

  test('smoke', async () => {
    const id = await createSession(w.url, { network: { allow_out: ['allowed.test'] } });
    const r = await exec(w.url, id, { command: 'curl -sS https://allowed.test/echo; echo; time curl -sS https://denied.test/echo; echo $?; getent hosts x.test; echo $?; python3 -c "import socket; socket.create_connection((\"198.18.14.13\", 443), 3)"' });
    console.log(r);
    console.log(JSON.stringify((await call(w.url, 'GET', `/v1/sessions/${id}/network/log`)).body, null, 1));
  });
});

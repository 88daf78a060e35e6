import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { call, createSession, exec } from '../support/http.js';
import { containersOf, docker } from '../support/docker.js';

// gVisor is an option: this runs where `scripts/provision.sh --gvisor` registered runsc (CI does).
const runtimes = await docker('info', '--format', '{{json .Runtimes}}').catch(() => '{}');
const hasRunsc = runtimes.includes('"runsc"');

describe(
  'sandboxes under gVisor (--runtime runsc)',
  {
    skip: hasRunsc
      ? false
      : 'runsc is not registered with the engine (scripts/provision.sh --gvisor)',
  },
  () => {
    let w: TestWorker;
    let id: string;

    before(async () => {
      w = await startWorker({ poolSize: 1, ociRuntime: 'runsc' });
      id = await createSession(w.url);
    });
    after(async () => {
      await w.close();
      assert.deepEqual(await containersOf(w.workerId), []);
    });

    test('commands run in gVisor’s kernel, as sandboxuser, without network', async () => {
      const r = await exec(w.url, id, {
        command: 'whoami; dmesg | head -1; ls /sys/class/net 2>/dev/null || echo no-sysfs-net',
      });
      assert.match(r.stdout, /^sandboxuser\n/);
      assert.match(r.stdout, /gVisor/);
      assert.doesNotMatch(r.stdout, /eth0/);
    });

    test('timeouts kill the process group, and files round-trip', async () => {
      const r = await exec(w.url, id, { command: 'sleep 600 & sleep 600', timeout_ms: 1000 });
      assert.equal(r.timed_out, true);
      assert.doesNotMatch((await exec(w.url, id, { command: 'ps -eo args=' })).stdout, /sleep 600/);
      const data = randomBytes(256 * 1024);
      const url = `${w.url}/v1/sessions/${id}/files?path=blob`;
      assert.equal((await fetch(url, { method: 'PUT', body: data })).status, 201);
      assert.ok(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(data));
    });

    // Under gVisor the memory limit applies to the sandbox's whole kernel: a bomb can take the
    // session with it. It must then be reported lost (410), never hang, and touch nothing else.
    test('a memory bomb is contained: killed, or its session reported lost', async () => {
      const other = await createSession(w.url);
      const r = await call<{ exit_code?: number; error?: { code: string } }>(
        w.url,
        'POST',
        `/v1/sessions/${id}/exec`,
        {
          command:
            'python3 -c "b = bytearray()\nwhile True: b.extend(bytearray(16 * 1024 * 1024))"',
          timeout_ms: 60_000,
        },
      );
      if (r.status === 200) assert.notEqual(r.body.exit_code, 0);
      else assert.equal(r.body.error?.code, 'session_lost');
      assert.equal(
        (await exec(w.url, other, { command: 'echo unaffected' })).stdout,
        'unaffected\n',
      );
      assert.equal((await call(w.url, 'GET', '/health')).status, 200);
    });
  },
);

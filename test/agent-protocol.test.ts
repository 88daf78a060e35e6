import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DockerRuntime } from '../packages/server/src/runtime/docker/docker-runtime.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';
import { call, createSession, exec } from './support/http.js';
import { containersOf, docker } from './support/docker.js';

// The fast path through the public API: the worker talks to the in-sandbox agent of the default
// image over the container's attached stdio. Every wait here is bounded by a retry count, not
// a time budget: these tests check behaviour, the benchmark measures speed.

const MiB = 1024 * 1024;

interface NdjsonEvent {
  type: string;
  data?: string;
  exit_code?: number;
  timed_out?: boolean;
  error?: { code: string };
}

/** Starts a streaming exec and returns its event reader (the caller decides when to stop reading). */
async function openStream(
  url: string,
  session: string,
  body: Record<string, unknown>,
  signal?: AbortSignal,
) {
  const response = await fetch(`${url}/v1/sessions/${session}/exec`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
    body: JSON.stringify(body),
    signal,
  });
  assert.equal(response.status, 200);
  assert.ok(response.body);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  return {
    /** The next event, or undefined at the end of the stream. */
    async next(): Promise<NdjsonEvent | undefined> {
      for (;;) {
        const newline = buffered.indexOf('\n');
        if (newline >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          return JSON.parse(line) as NdjsonEvent;
        }
        const { value, done } = await reader.read();
        if (done) return undefined;
        buffered += decoder.decode(value, { stream: true });
      }
    },
    cancel: () => reader.cancel(),
  };
}

/** Runs `command` until it prints `expected` or the attempts run out; returns the last output. */
async function pollUntil(
  url: string,
  session: string,
  command: string,
  expected: string,
): Promise<string> {
  let output = '';
  for (let attempt = 0; attempt < 50; attempt++) {
    output = (await exec(url, session, { command })).stdout.trim();
    if (output === expected) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return output;
}

describe('exec and files through the in-sandbox agent', () => {
  let w: TestWorker;
  let session: string;

  before(async () => {
    w = await startWorker({ poolSize: 2, outputLimitBytes: 256 * MiB });
    session = await createSession(w.url);
  });
  after(async () => {
    await w.close();
    assert.deepEqual(await containersOf(w.workerId), [], 'containers left after close');
  });

  test('the sandbox runs the agent as uid 1000 with the command in its own process group', async () => {
    const r = await exec(w.url, session, {
      command: 'ps -o user=,args= -p 1,$PPID; echo pgid=$(ps -o pgid= -p $$) pid=$$',
    });
    assert.match(r.stdout, /sandpool_agent\.py/);
    const [, pgid, pid] = /pgid=\s*(\d+) pid=(\d+)/.exec(r.stdout) ?? [];
    assert.equal(pgid, pid);
    // Out of memory, the kernel picks the command over the agent. The agent sets the score just
    // after the spawn, so the shell looks once it surely has.
    const adj = await exec(w.url, session, {
      command: 'sleep 0.2; cat /proc/$$/oom_score_adj /proc/$PPID/oom_score_adj',
    });
    assert.deepEqual(adj.stdout.trim().split('\n'), ['500', '0']);
  });

  test('5 MiB of output arrives whole', async () => {
    const r = await exec(w.url, session, {
      command: 'python3 -c "import sys; sys.stdout.write(\'x\' * (5 * 1024 * 1024))"',
    });
    assert.equal(r.exit_code, 0);
    assert.equal(r.stdout.length, 5 * MiB);
    assert.equal(r.truncated, false);
  });

  test('binary files round-trip byte for byte, 5 MiB', async () => {
    const bytes = randomBytes(5 * MiB);
    const put = await fetch(`${w.url}/v1/sessions/${session}/files?path=bin/blob`, {
      method: 'PUT',
      body: bytes,
    });
    assert.equal(put.status, 201);
    const got = await fetch(`${w.url}/v1/sessions/${session}/files?path=bin/blob`);
    assert.equal(got.status, 200);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes));
    const sum = await exec(w.url, session, { command: 'sha256sum bin/blob | cut -d" " -f1' });
    const { createHash } = await import('node:crypto');
    assert.equal(sum.stdout.trim(), createHash('sha256').update(bytes).digest('hex'));
  });

  test('a timeout kills the whole process group', async () => {
    const r = await exec(w.url, session, { command: 'sleep 611 & sleep 612', timeout_ms: 500 });
    assert.equal(r.timed_out, true);
    assert.equal(await pollUntil(w.url, session, 'pgrep -c "^sleep 61[12]$" || true', '0'), '0');
  });

  test('the first output reaches the client while the command still runs', async () => {
    const stream = await openStream(w.url, session, {
      command: 'echo first; while [ ! -e /tmp/release ]; do sleep 0.05; done; echo second',
      timeout_ms: 30_000,
    });
    assert.deepEqual(await stream.next(), { type: 'stdout', data: 'first\n' });
    // Only now may the command finish: the first line cannot have waited for the end.
    await exec(w.url, session, { command: 'touch /tmp/release' });
    assert.deepEqual(await stream.next(), { type: 'stdout', data: 'second\n' });
    assert.equal((await stream.next())?.type, 'exit');
    await exec(w.url, session, { command: 'rm -f /tmp/release' });
  });

  test('a client that stops reading holds the command back (backpressure)', async () => {
    const stream = await openStream(w.url, session, {
      command:
        "python3 -c \"\nimport sys\nchunk = b'y' * 65536\nfor i in range(3200):\n    sys.stdout.buffer.write(chunk)\n    open('/tmp/progress', 'w').write(str(i + 1))\n\"",
      timeout_ms: 60_000,
    });
    assert.equal((await stream.next())?.type, 'stdout');
    // Let buffers fill while nobody reads, then see how far the writer got.
    const progress = async () =>
      Number((await exec(w.url, session, { command: 'cat /tmp/progress' })).stdout);
    let before = -1;
    let now = await progress();
    for (let attempt = 0; attempt < 20 && now !== before; attempt++) {
      await new Promise((r) => setTimeout(r, 150));
      before = now;
      now = await progress();
    }
    assert.equal(now, before, 'the writer stalled');
    assert.ok(now < 3200, `the writer got to ${now * 64} KiB of 200 MiB without a reader`);
    await stream.cancel();
    assert.equal(await pollUntil(w.url, session, 'pgrep -c -f "^python3 -c" || true', '0'), '0');
  });

  test('a client that disconnects gets its command killed', async () => {
    const controller = new AbortController();
    const stream = await openStream(
      w.url,
      session,
      { command: 'echo started; exec sleep 613', timeout_ms: 60_000 },
      controller.signal,
    );
    assert.equal((await stream.next())?.data, 'started\n');
    controller.abort();
    assert.equal(await pollUntil(w.url, session, 'pgrep -c "^sleep 613$" || true', '0'), '0');
  });

  test('a fork bomb ends at its timeout and the session keeps working', async () => {
    const bombed = await createSession(w.url);
    const r = await exec(w.url, bombed, { command: "bash -c ':(){ :|:& };:'", timeout_ms: 2000 });
    assert.equal(r.timed_out, true);
    const after = await pollUntil(w.url, bombed, 'echo ok', 'ok');
    assert.equal(after, 'ok');
    assert.equal((await call(w.url, 'DELETE', `/v1/sessions/${bombed}`)).status, 204);
  });

  test('sandbox code cannot kill its agent: it is pid 1 of the container', async () => {
    const hardy = await createSession(w.url);
    const r = await exec(w.url, hardy, { command: 'kill -9 -1; kill -9 1; echo tried' });
    assert.match(r.stdout, /tried/);
    assert.equal((await exec(w.url, hardy, { command: 'echo alive' })).stdout, 'alive\n');
    assert.equal((await call(w.url, 'DELETE', `/v1/sessions/${hardy}`)).status, 204);
  });

  test('when the agent dies with its container, the session answers 410 session_lost', async () => {
    const doomed = await createSession(w.url);
    const containerId = w.worker.sessions.get(doomed).sandbox.id;
    await docker('kill', containerId);
    const later = await call<{ error: { code: string } }>(
      w.url,
      'POST',
      `/v1/sessions/${doomed}/exec`,
      { command: 'echo hi' },
    );
    assert.equal(later.status, 410);
    assert.equal(later.body.error.code, 'session_lost');
    assert.equal((await call(w.url, 'GET', '/health')).status, 200);
    assert.equal((await exec(w.url, session, { command: 'echo fine' })).stdout, 'fine\n');
  });
});

/**
 * Sandbox code runs as the agent's uid. The agent is pid 1 (no docker-init holding the
 * container's stdio) and non-dumpable, so its descriptors, memory and ptrace are closed to it.
 */
const AGENT_REACH = [
  'import os',
  'me = os.getpid()',
  'agent = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != me and b"sandpool_agent" in open("/proc/%s/cmdline" % p, "rb").read()]',
  'print("agents", agent)',
  'def tried(what, fn):',
  '    try:',
  '        fn()',
  '        print(what, "OPEN")',
  '    except OSError as e:',
  '        print(what, "refused", e.errno)',
  'for pid in agent:',
  '    tried("listdir fd", lambda: os.listdir("/proc/%s/fd" % pid))',
  '    for fd in (0, 1, 2):',
  '        tried("write fd%d" % fd, lambda: open("/proc/%s/fd/%d" % (pid, fd), "wb").close())',
  '        tried("read fd%d" % fd, lambda: open("/proc/%s/fd/%d" % (pid, fd), "rb").close())',
  '    tried("mem", lambda: open("/proc/%s/mem" % pid, "rb").close())',
  '    tried("environ", lambda: open("/proc/%s/environ" % pid, "rb").read())',
].join('\n');

/** Runs AGENT_REACH in a fresh session; answers what sandbox code could open of the agent. */
async function reachAgent(url: string): Promise<string> {
  const id = await createSession(url);
  const pid1 = await exec(url, id, { command: 'tr "\\0" " " < /proc/1/cmdline' });
  assert.match(pid1.stdout, /sandpool_agent\.py/, 'the agent is pid 1 (no docker-init)');
  const r = await exec(url, id, { argv: ['python3', '-c', AGENT_REACH] });
  assert.match(r.stdout, /agents \['1'\]/, r.stdout + r.stderr);
  assert.equal((await call(url, 'DELETE', `/v1/sessions/${id}`)).status, 204);
  return r.stdout;
}

describe('the agent channel is closed to sandbox code', () => {
  test("under runc: no /proc route to the agent's descriptors or memory", async () => {
    const w = await startWorker({ poolSize: 1 });
    try {
      const reached = await reachAgent(w.url);
      assert.doesNotMatch(reached, /OPEN/, reached);
      assert.equal(reached.match(/refused/g)?.length, 9, reached);
    } finally {
      await w.close();
    }
  });

  // gVisor's /proc does not apply the dumpable flag to /proc/<pid>/fd (nor environ): there the
  // descriptors stay reachable (SECURITY.md, what remains) and the worker's bounds hold alone.
  test('under runsc (gVisor), when registered: memory closed, descriptors still reachable', async (t) => {
    const runtimes = await docker('info', '--format', '{{json .Runtimes}}');
    if (!runtimes.includes('runsc')) {
      t.skip('runsc is not registered with the engine');
      return;
    }
    const w = await startWorker({ poolSize: 1, ociRuntime: 'runsc' });
    try {
      const reached = await reachAgent(w.url);
      t.diagnostic(reached.replace(/\n/g, '; '));
      assert.match(reached, /mem refused/, reached);
      assert.match(reached, /write fd1 OPEN/, 'gVisor closed the fd route: update SECURITY.md');
    } finally {
      await w.close();
    }
  });
});

describe('images without the agent', () => {
  test('run through docker exec behind the same interface', async () => {
    const runtime = new DockerRuntime({
      agent: 'never',
      limits: {
        image: process.env.SANDPOOL_IMAGE ?? 'sandpool/sandbox:latest',
        memoryMb: 256,
        cpus: 0.5,
        pidsLimit: 64,
        network: 'none',
        homeSizeMb: 16,
        tmpSizeMb: 16,
      },
    });
    const sandbox = await runtime.create({ labels: { 'sandpool.test': 'agent-fallback' } });
    try {
      const out: Buffer[] = [];
      const outcome = await sandbox.exec(
        {
          argv: ['/bin/sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "'],
          cwd: '/home/sandboxuser',
          timeoutMs: 10_000,
        },
        { onStdout: (c) => void out.push(c), onStderr: () => undefined },
      );
      assert.equal(outcome.exitCode, 0);
      assert.match(Buffer.concat(out).toString(), /sleep infinity/);
    } finally {
      await sandbox.destroy();
    }
    const left = await docker('ps', '-aq', '--filter', `id=${sandbox.id}`);
    assert.equal(left.trim(), '', 'container left after destroy');
  });
});

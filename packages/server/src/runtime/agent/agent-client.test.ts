import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { SandpoolError } from '../../errors/sandpool-error.js';
import { AgentClient } from './agent-client.js';

// The real agent, spawned locally over pipes: the protocol and process handling without Docker.
const AGENT = fileURLToPath(new URL('../../../../agent/sandpool_agent.py', import.meta.url));

interface LocalAgent {
  client: AgentClient;
  child: ChildProcessWithoutNullStreams;
  stop(): Promise<void>;
}

async function startAgent(): Promise<LocalAgent> {
  const child = spawn('python3', [AGENT], { stdio: ['pipe', 'pipe', 'pipe'] });
  const client = new AgentClient({
    send: async (frame) => {
      if (!child.stdin.write(frame)) await once(child.stdin, 'drain');
    },
    limits: { killGraceMs: 2000 },
  });
  // Pausing the pipe on the client's request, as the Docker transport does.
  child.stdout.on('data', (chunk: Buffer) => {
    const pause = client.receive(chunk);
    if (pause) {
      child.stdout.pause();
      void pause.then(() => child.stdout.resume());
    }
  });
  child.stdout.on('end', () => client.end('exited'));
  child.stdin.on('error', () => undefined);
  child.stderr.resume();
  await client.hello(5000);
  return {
    client,
    child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin.end();
        await once(child, 'exit');
      }
    },
  };
}

function collect(): {
  out: Buffer[];
  err: Buffer[];
  onStdout(c: Buffer): void;
  onStderr(c: Buffer): void;
} {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  return { out, err, onStdout: (c) => void out.push(c), onStderr: (c) => void err.push(c) };
}

/** Alive and not a zombie (an orphan's reaping is up to the host's init, not the agent). */
async function processRuns(pid: number): Promise<boolean> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return status !== '' && !/^\d+ \(.*\) Z/.test(status);
}

describe('agent client with the real agent over pipes', () => {
  let agent: LocalAgent;
  let dir: string;
  before(async () => {
    agent = await startAgent();
    dir = await mkdtemp(path.join(tmpdir(), 'sandpool-agent-test-'));
  });
  after(async () => {
    await agent.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('runs a command with cwd, env and stdin, and reports its exit code', async () => {
    const sinks = collect();
    const outcome = await agent.client.exec(
      {
        argv: ['/bin/sh', '-c', 'pwd; echo "$GREETING"; cat; echo oops >&2; exit 3'],
        cwd: dir,
        env: { GREETING: 'hello' },
        stdin: Buffer.from('from stdin\n'),
        timeoutMs: 5000,
      },
      sinks,
    );
    assert.equal(Buffer.concat(sinks.out).toString(), `${dir}\nhello\nfrom stdin\n`);
    assert.equal(Buffer.concat(sinks.err).toString(), 'oops\n');
    assert.equal(outcome.exitCode, 3);
    assert.equal(outcome.timedOut, false);
  });

  test('a missing program exits 127, a signal death 128+n', async () => {
    const missing = await agent.client.exec(
      { argv: ['/no/such/program'], cwd: dir, timeoutMs: 5000 },
      collect(),
    );
    assert.equal(missing.exitCode, 127);
    const killed = await agent.client.exec(
      { argv: ['/bin/sh', '-c', 'kill -9 $$'], cwd: dir, timeoutMs: 5000 },
      collect(),
    );
    assert.equal(killed.exitCode, 137);
  });

  test('5 MiB of output arrives whole, in order, through a slow reader', async () => {
    let received = 0;
    const hash = (await import('node:crypto')).createHash('sha256');
    const outcome = await agent.client.exec(
      {
        argv: [
          'python3',
          '-c',
          'import sys\nfor i in range(5*1024): sys.stdout.write(("%1023d\\n" % i))',
        ],
        cwd: dir,
        timeoutMs: 20_000,
      },
      {
        onStdout: async (chunk) => {
          received += chunk.length;
          hash.update(chunk);
          if (received < 1024 * 1024) await new Promise((r) => setImmediate(r)); // backpressure
        },
        onStderr: () => undefined,
      },
    );
    assert.equal(outcome.exitCode, 0);
    assert.equal(received, 5 * 1024 * 1024);
    const expected = (await import('node:crypto')).createHash('sha256');
    for (let i = 0; i < 5 * 1024; i++) expected.update(`${String(i).padStart(1023)}\n`);
    assert.equal(hash.digest('hex'), expected.digest('hex'));
  });

  test('binary data survives stdin → stdout and file write → read', async () => {
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 256));
    const sinks = collect();
    await agent.client.exec({ argv: ['cat'], cwd: dir, stdin: bytes, timeoutMs: 5000 }, sinks);
    assert.ok(Buffer.concat(sinks.out).equals(bytes));

    const file = path.join(dir, 'nested/deeper/blob.bin');
    const size = await agent.client.writeFile(
      file,
      Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]),
    );
    assert.equal(size, bytes.length);
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await agent.client.readFile(file, sink);
    assert.ok(Buffer.concat(chunks).equals(bytes));
    assert.deepEqual(await agent.client.statFile(file), { type: 'file', size: bytes.length });
  });

  test('files: list, stat of nothing, remove, and errors as public codes', async () => {
    await agent.client.writeFile(
      path.join(dir, 'listed/a.txt'),
      Readable.from([Buffer.from('abc')]),
    );
    const entries = await agent.client.listFiles(path.join(dir, 'listed'));
    assert.deepEqual(
      entries.map((e) => [e.name, e.type, e.size]),
      [['a.txt', 'file', 3]],
    );
    assert.equal(await agent.client.statFile(path.join(dir, 'missing')), undefined);
    await assert.rejects(agent.client.listFiles(path.join(dir, 'listed/a.txt')), {
      code: 'invalid_path',
    });
    await assert.rejects(agent.client.listFiles(path.join(dir, 'nope')), {
      code: 'file_not_found',
    });
    await assert.rejects(agent.client.readFile(path.join(dir, 'nope'), new PassThrough()), {
      code: 'file_not_found',
    });
    await assert.rejects(agent.client.readFile(dir, new PassThrough()), { code: 'invalid_path' });
    await agent.client.removeFile(path.join(dir, 'listed'));
    await assert.rejects(agent.client.removeFile(path.join(dir, 'listed')), {
      code: 'file_not_found',
    });
  });

  test('a timeout kills the whole process group, background children included', async () => {
    const sinks = collect();
    const outcome = await agent.client.exec(
      { argv: ['/bin/sh', '-c', 'sleep 600 & echo $!; sleep 600'], cwd: dir, timeoutMs: 300 },
      sinks,
    );
    assert.equal(outcome.timedOut, true);
    const child = Number(Buffer.concat(sinks.out).toString().trim());
    assert.ok(child > 0);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await processRuns(child), false);
  });

  test('pipe semantics: a background child holding stdout keeps the exec running until its timeout', async () => {
    const outcome = await agent.client.exec(
      { argv: ['/bin/sh', '-c', 'sleep 600 & exit 0'], cwd: dir, timeoutMs: 400 },
      collect(),
    );
    assert.equal(outcome.timedOut, true);
  });

  test('aborting (a client went away) kills the command', async () => {
    const controller = new AbortController();
    const started = performance.now();
    const running = agent.client.exec(
      { argv: ['sleep', '600'], cwd: dir, timeoutMs: 60_000, signal: controller.signal },
      collect(),
    );
    setTimeout(() => controller.abort(), 100);
    const outcome = await running;
    assert.equal(outcome.exitCode, 137);
    assert.ok(performance.now() - started < 5000);
  });

  test('several execs run at once on one connection, again and again', async () => {
    // Many short execs in parallel reuse pipe descriptors quickly: each must stay its own.
    const lanes = await Promise.all(
      Array.from({ length: 10 }, async (_, lane) => {
        const codes: number[] = [];
        for (let i = 0; i < 20; i++) {
          const sinks = collect();
          const outcome = await agent.client.exec(
            {
              argv: ['/bin/sh', '-c', `echo ${lane}-${i}; exit ${lane}`],
              cwd: dir,
              timeoutMs: 5000,
            },
            sinks,
          );
          assert.equal(Buffer.concat(sinks.out).toString(), `${lane}-${i}\n`);
          codes.push(outcome.exitCode);
        }
        return codes;
      }),
    );
    lanes.forEach((codes, lane) => assert.deepEqual(codes, Array<number>(20).fill(lane)));
  });

  test('when the agent dies, pending and later requests fail with session_lost', async () => {
    const doomed = await startAgent();
    const running = doomed.client.exec(
      { argv: ['sleep', '600'], cwd: dir, timeoutMs: 60_000 },
      collect(),
    );
    setTimeout(() => doomed.child.kill('SIGKILL'), 100);
    await assert.rejects(
      running,
      (error: unknown) => error instanceof SandpoolError && error.code === 'session_lost',
    );
    await assert.rejects(doomed.client.statFile('/'), { code: 'session_lost' });
    await doomed.stop();
  });
});

describe('agent client bounds what an agent may send', () => {
  test('an oversized frame ends the connection as lost', async () => {
    const lost: string[] = [];
    const client = new AgentClient({ send: () => Promise.resolve(), onLost: (r) => lost.push(r) });
    const pending = client.statFile('/x');
    const header = Buffer.alloc(9);
    header.writeUInt32BE(64 * 1024 * 1024, 0);
    assert.equal(client.receive(header), undefined);
    await assert.rejects(pending, { code: 'session_lost' });
    assert.match(lost[0] ?? '', /protocol/);
  });

  test('a silent agent is declared lost', async () => {
    const client = new AgentClient({
      send: () => Promise.resolve(),
      limits: { pingIntervalMs: 20, silenceTimeoutMs: 60 },
    });
    const keepAlive = setTimeout(() => undefined, 1000); // the watchdog's timer does not hold the loop
    await assert.rejects(client.statFile('/x'), { code: 'session_lost' });
    clearTimeout(keepAlive);
  });

  test('a flood of frames makes receive ask the transport to pause', async () => {
    const { encodeFrame, ReplyType } = await import('./agent-protocol.js');
    const client = new AgentClient({
      send: () => Promise.resolve(),
      limits: { maxFramesPerSecond: 100 },
    });
    const pong = encodeFrame(ReplyType.pong, 0);
    const pause = client.receive(Buffer.concat(Array.from({ length: 20 }, () => pong)));
    assert.ok(pause instanceof Promise);
    await pause;
    assert.equal(client.lost, undefined);
  });

  test('output past the window without acks is a protocol violation', async () => {
    const frames: Buffer[] = [];
    const client = new AgentClient({
      send: (f) => {
        frames.push(f);
        return Promise.resolve();
      },
      limits: { windowBytes: 1024, maxFrameBytes: 1024 },
    });
    const running = client.exec(
      { argv: ['x'], cwd: '/', timeoutMs: 5000 },
      { onStdout: () => new Promise<void>(() => undefined), onStderr: () => undefined },
    );
    await new Promise((r) => setImmediate(r));
    const id = frames[0]?.readUInt32BE(5) ?? 0;
    const { encodeFrame, ReplyType } = await import('./agent-protocol.js');
    for (let i = 0; i < 3; i++) {
      await client.receive(encodeFrame(ReplyType.stdout, id, Buffer.alloc(1000)));
    }
    await assert.rejects(running, { code: 'session_lost' });
  });

  test('a frame trickled in tiny pieces ends the connection, saying why', async () => {
    const { encodeFrame, ReplyType } = await import('./agent-protocol.js');
    const lost: string[] = [];
    const client = new AgentClient({ send: () => Promise.resolve(), onLost: (r) => lost.push(r) });
    const frame = encodeFrame(ReplyType.stdout, 7, Buffer.alloc(512 * 1024));
    for (let offset = 0; offset < frame.length && client.lost === undefined; offset += 64) {
      await client.receive(frame.subarray(offset, offset + 64));
    }
    assert.match(lost[0] ?? '', /trickled in 65 pieces of 64 bytes/);
  });

  test('an honest large frame in page-sized pieces is taken', async () => {
    const { encodeFrame, ReplyType } = await import('./agent-protocol.js');
    const client = new AgentClient({ send: () => Promise.resolve() });
    const frame = encodeFrame(ReplyType.stdout, 7, Buffer.alloc(1024 * 1024 - 16));
    for (let offset = 0; offset < frame.length; offset += 4096) {
      await client.receive(frame.subarray(offset, offset + 4096));
    }
    assert.equal(client.lost, undefined);
  });

  test('chunks over the worker-wide budget pause every connection that shares it', async () => {
    const { ChannelBudget } = await import('./agent-channel-budget.js');
    const workerBudget = new ChannelBudget({ chunksPerSecond: 100, bytesPerSecond: 1e12 });
    const clients = [1, 2].map(
      () => new AgentClient({ send: () => Promise.resolve(), workerBudget }),
    );
    const { encodeFrame, ReplyType } = await import('./agent-protocol.js');
    const pong = encodeFrame(ReplyType.pong, 0);
    for (let i = 0; i < 5; i++) assert.equal(clients[0]?.receive(pong), undefined);
    for (let i = 0; i < 5; i++) assert.equal(clients[1]?.receive(pong), undefined);
    const pause = clients[1]?.receive(pong);
    assert.ok(pause instanceof Promise, 'the eleventh chunk of the slice pauses');
    await pause;
  });
});

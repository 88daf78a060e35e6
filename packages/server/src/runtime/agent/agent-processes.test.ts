import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile, rename, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type { OutputStream, WatchEvent } from '../sandbox-processes.js';
import { AgentClient } from './agent-client.js';
import { AgentProcesses, ProcessReplyType } from './agent-processes.js';
import { encodeFrame } from './agent-protocol.js';

// The real agent over pipes (no Docker): background processes, PTYs and watches.
const AGENT = fileURLToPath(new URL('../../../../agent/sandpool_agent.py', import.meta.url));

async function startAgent(): Promise<{
  client: AgentClient;
  child: ChildProcessWithoutNullStreams;
}> {
  const child = spawn('python3', [AGENT], { stdio: ['pipe', 'pipe', 'pipe'] });
  const client = new AgentClient({
    send: async (frame) => {
      if (!child.stdin.write(frame)) await once(child.stdin, 'drain');
    },
    limits: { killGraceMs: 2000 },
  });
  child.stdout.on('data', (chunk: Buffer) => void client.receive(chunk));
  child.stdout.on('end', () => client.end('exited'));
  child.stdin.on('error', () => undefined);
  child.stderr.resume();
  await client.hello(5000);
  return { client, child };
}

interface Run {
  out: string;
  chunks: [OutputStream, string][];
  exit: Promise<number>;
  lost: Promise<Error>;
}

function recorder(): Run & {
  events: Parameters<AgentProcesses['start']>[1];
} {
  let exited!: (code: number) => void;
  let lostWith!: (error: Error) => void;
  const run = {
    out: '',
    chunks: [] as [OutputStream, string][],
    exit: new Promise<number>((r) => (exited = r)),
    lost: new Promise<Error>((r) => (lostWith = r)),
    events: {
      onOutput: (stream: OutputStream, chunk: Buffer) => {
        run.out += chunk.toString();
        run.chunks.push([stream, chunk.toString()]);
      },
      onExit: (code: number) => exited(code),
      onLost: (error: Error) => lostWith(error),
    },
  };
  return run;
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('agent background processes (real agent over pipes)', () => {
  let agent: { client: AgentClient; child: ChildProcessWithoutNullStreams };
  let processes: AgentProcesses;
  let dir: string;

  before(async () => {
    agent = await startAgent();
    processes = new AgentProcesses(agent.client);
    dir = await mkdtemp(path.join(tmpdir(), 'sandpool-proc-'));
  });
  after(async () => {
    agent.client.close();
    agent.child.stdin.end();
    await rm(dir, { recursive: true, force: true });
  });

  test('output on both streams, stdin, end of input and the exit code', async () => {
    const run = recorder();
    const proc = await processes.start(
      { argv: ['sh', '-c', 'echo out; echo err >&2; cat; exit 4'], cwd: dir, env: {}, stdin: true },
      run.events,
    );
    assert.ok(proc.pid > 1);
    proc.writeStdin(Buffer.from('typed\n'));
    proc.endStdin();
    assert.equal(await run.exit, 4);
    assert.ok(run.chunks.some(([s, t]) => s === 'stderr' && t === 'err\n'));
    assert.match(run.out, /out\n[^]*typed\n/);
  });

  test('signals reach the group; kill ends it with 137', async () => {
    const run = recorder();
    const proc = await processes.start(
      {
        argv: ['sh', '-c', 'trap "echo bye; exit 7" TERM; echo up; while :; do sleep 0.05; done'],
        cwd: dir,
        env: {},
        stdin: false,
      },
      run.events,
    );
    await until(() => run.out.includes('up'), 'the trap');
    proc.signal('SIGTERM');
    assert.equal(await run.exit, 7);
    const sleeper = recorder();
    const other = await processes.start(
      { argv: ['sleep', '600'], cwd: dir, env: {}, stdin: false },
      sleeper.events,
    );
    other.kill();
    assert.equal(await sleeper.exit, 137);
  });

  test('a pseudo-terminal: TERM, size, resize, and ^D as end of input', async () => {
    const run = recorder();
    const proc = await processes.start(
      {
        argv: ['sh', '-c', 'echo $TERM; stty size; read x; stty size; cat'],
        cwd: dir,
        env: {},
        stdin: false,
        pty: { cols: 90, rows: 20 },
      },
      run.events,
    );
    await until(() => run.out.includes('20 90'), 'the first size');
    assert.match(run.out, /xterm-256color/);
    proc.resize({ cols: 120, rows: 50 });
    proc.writeStdin(Buffer.from('\n'));
    await until(() => run.out.includes('50 120'), 'the new size');
    proc.endStdin();
    assert.equal(await run.exit, 0);
    assert.ok(run.chunks.every(([s]) => s === 'stdout'));
  });

  test('a program that does not exist fails the start', async () => {
    await assert.rejects(
      processes.start(
        { argv: ['/no/such/program'], cwd: dir, env: {}, stdin: false },
        recorder().events,
      ),
      (error: unknown) =>
        error instanceof SandpoolError &&
        error.code === 'invalid_request' &&
        /ENOENT/.test(error.message),
    );
  });

  test('a watch reports create, write, rename, remove in order, then the end', async () => {
    const root = path.join(dir, 'watched');
    await mkdir(path.join(root, 'sub'), { recursive: true });
    const events: WatchEvent[] = [];
    let ended = '';
    const watch = await processes.watch(root, true, {
      onEvents: (batch) => void events.push(...batch),
      onEnd: (reason) => (ended = reason),
      onLost: () => undefined,
    });
    await writeFile(path.join(root, 'sub', 'a.txt'), 'x');
    await rename(path.join(root, 'sub', 'a.txt'), path.join(root, 'sub', 'b.txt'));
    await unlink(path.join(root, 'sub', 'b.txt'));
    await until(() => events.some((e) => e.type === 'remove'), 'the remove');
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.name}`),
      [
        'create sub/a.txt',
        'write sub/a.txt',
        'rename sub/a.txt',
        'create sub/b.txt',
        'remove sub/b.txt',
      ],
    );
    await mkdir(path.join(root, 'new'));
    await writeFile(path.join(root, 'new', 'deep.txt'), 'y');
    await until(() => events.some((e) => e.name === 'new/deep.txt'), 'an event in a new directory');
    await rm(root, { recursive: true });
    await until(() => ended !== '', 'the end');
    assert.equal(ended, 'removed');
    watch.stop();
  });

  test('watching a missing directory fails with file_not_found', async () => {
    await assert.rejects(
      processes.watch(path.join(dir, 'nope'), false, {
        onEvents: () => undefined,
        onEnd: () => undefined,
        onLost: () => undefined,
      }),
      (error: unknown) => error instanceof SandpoolError && error.code === 'file_not_found',
    );
  });
});

describe('a hostile agent cannot flood the worker through a process', () => {
  /** An AgentClient whose "agent" is this test: frames are injected as the agent would send them. */
  function fakeAgent() {
    const sent: Buffer[] = [];
    let lostReason = '';
    const client = new AgentClient({
      send: async (frame) => void sent.push(frame),
      onLost: (reason) => (lostReason = reason),
    });
    return { client, sent, lost: () => lostReason };
  }

  test('output beyond the window ends the connection (the session is lost)', async () => {
    const fake = fakeAgent();
    const run = recorder();
    const starting = new AgentProcesses(fake.client).start(
      { argv: ['x'], cwd: '/', env: {}, stdin: false },
      run.events,
    );
    const id = fake.sent[0]?.readUInt32BE(5) ?? 0;
    void fake.client.receive(encodeFrame(ProcessReplyType.started, id, { pid: 42 }));
    await starting;
    // Acks are held past the output rate; the agent that ignores the window is cut off.
    const chunk = Buffer.alloc(1024 * 1024 - 1, 0x61);
    for (let i = 0; i < 40 && !fake.lost(); i++)
      void fake.client.receive(encodeFrame(ProcessReplyType.stdout, id, chunk));
    assert.match(fake.lost(), /unacknowledged process output/);
    const error = await run.lost;
    assert.ok(error instanceof SandpoolError && error.code === 'session_lost');
  });

  test('a malformed watch event ends the connection', async () => {
    const fake = fakeAgent();
    const ending: string[] = [];
    const watching = new AgentProcesses(fake.client).watch('/tmp', false, {
      onEvents: () => undefined,
      onEnd: (r) => void ending.push(r),
      onLost: () => undefined,
    });
    const id = fake.sent[0]?.readUInt32BE(5) ?? 0;
    void fake.client.receive(encodeFrame(ProcessReplyType.watchReady, id, {}));
    await watching;
    void fake.client.receive(
      encodeFrame(ProcessReplyType.watchEvents, id, { events: [['explode', 1, 'x']] }),
    );
    assert.match(fake.lost(), /malformed watch event/);
  });

  test('a start answered with a bogus pid ends the connection', async () => {
    const fake = fakeAgent();
    const starting = new AgentProcesses(fake.client).start(
      { argv: ['x'], cwd: '/', env: {}, stdin: false },
      recorder().events,
    );
    const id = fake.sent[0]?.readUInt32BE(5) ?? 0;
    void fake.client.receive(encodeFrame(ProcessReplyType.started, id, { pid: -1 }));
    await assert.rejects(
      starting,
      (e: unknown) => e instanceof SandpoolError && e.code === 'session_lost',
    );
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { SandpoolError } from '../../errors/sandpool-error.js';
import { AgentClient } from './agent-client.js';
import { encodeFrame, FrameDecoder, ReplyType } from './agent-protocol.js';
import { AgentTunnels, TunnelReplyType, TunnelRequestType } from './agent-tunnel.js';

// The real agent over pipes (no Docker), connecting to servers of this test on 127.0.0.1.
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
  });
  child.stdout.on('data', (chunk: Buffer) => void client.receive(chunk));
  child.stdout.on('end', () => client.end('exited'));
  child.stdin.on('error', () => undefined);
  child.stderr.resume();
  await client.hello(5000);
  return { client, child };
}

async function listen(
  onSocket: (socket: Socket) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer(onSocket);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function readAll(stream: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('agent tunnels (real agent over pipes)', () => {
  let agent: { client: AgentClient; child: ChildProcessWithoutNullStreams };
  let tunnels: AgentTunnels;

  before(async () => {
    agent = await startAgent();
    tunnels = new AgentTunnels(agent.client);
  });
  after(() => {
    agent.child.kill('SIGKILL');
  });

  test('relays 4 MiB both ways through a window of 256 KiB, with half-close', async () => {
    const { server, port } = await listen((socket) => socket.pipe(socket)); // echo, end on end
    const data = randomBytes(4 * 1024 * 1024);
    let seenIn = 0;
    let seenOut = 0;
    const stream = await tunnels.open(port, (direction, bytes) => {
      if (direction === 'in') seenIn += bytes;
      else seenOut += bytes;
    });
    assert.equal(tunnels.openCount, 1);
    const reading = readAll(stream);
    stream.end(data);
    const echoed = await reading;
    assert.equal(echoed.length, data.length);
    assert.ok(echoed.equals(data));
    assert.equal(seenIn, data.length);
    assert.equal(seenOut, data.length);
    await until(() => tunnels.openCount === 0, 'the tunnel to close');
    assert.deepEqual(agent.client.inFlight.requests, 0);
    server.close();
  });

  test('a server that answers after the client half-closed, then closes', async () => {
    const { server, port } = await listen((socket) => {
      let got = 0;
      socket.on('data', (chunk: Buffer) => (got += chunk.length));
      socket.on('end', () => socket.end(`got ${got}`));
    });
    const stream = await tunnels.open(port);
    const reading = readAll(stream);
    stream.write('hello ');
    stream.end('world');
    assert.equal((await reading).toString(), 'got 11');
    server.close();
  });

  test('a slow reader holds the server back; the bytes all arrive', async () => {
    const size = 3 * 1024 * 1024;
    const { server, port } = await listen((socket) => socket.end(Buffer.alloc(size, 7)));
    const stream = await tunnels.open(port);
    await new Promise((r) => setTimeout(r, 300)); // nothing read: the agent stops at its window
    let total = 0;
    for await (const chunk of stream) {
      total += (chunk as Buffer).length;
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(total, size);
    server.close();
  });

  test('nothing listening: port_not_listening, the tunnel is gone', async () => {
    const { server, port } = await listen(() => undefined);
    server.close();
    await once(server, 'close');
    await assert.rejects(tunnels.open(port), (error: unknown) => {
      assert.ok(error instanceof SandpoolError);
      assert.equal(error.code, 'port_not_listening');
      assert.match(error.message, /Nothing listens on port \d+ in the session/);
      return true;
    });
    assert.equal(tunnels.openCount, 0);
    assert.equal(agent.client.inFlight.requests, 0);
  });

  test('destroying the stream closes the connection in the sandbox', async () => {
    let serverSide: Socket | undefined;
    const { server, port } = await listen((socket) => {
      serverSide = socket;
      socket.resume();
    });
    const stream = await tunnels.open(port);
    stream.write('x');
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(serverSide);
    const closed = once(serverSide, 'close');
    stream.destroy();
    await closed;
    await until(() => tunnels.openCount === 0, 'the tunnel to close');
    server.close();
  });

  test('a server that resets the connection destroys the stream with an error', async () => {
    const { server, port } = await listen((socket) => {
      socket.once('data', () => socket.resetAndDestroy());
    });
    const stream = await tunnels.open(port);
    stream.write('x');
    const [error] = (await once(stream, 'error')) as [Error];
    assert.match(error.message, /ECONNRESET|EPIPE/);
    server.close();
  });
});

describe('agent tunnels: a hostile agent', () => {
  /** A client whose "agent" is this test: frames it is sent are decoded here. */
  function scripted(): { client: AgentClient; sent: { type: number; id: number }[] } {
    const sent: { type: number; id: number }[] = [];
    const decoder = new FrameDecoder(8 * 1024 * 1024);
    const client = new AgentClient({
      send: async (frame) => {
        for (const f of decoder.push(frame)) sent.push({ type: f.type, id: f.requestId });
      },
    });
    return { client, sent };
  }

  test('data beyond the window ends the connection, and the stream with it', async () => {
    const { client, sent } = scripted();
    const opening = new AgentTunnels(client).open(8080);
    const id = sent.find((f) => f.type === TunnelRequestType.open)!.id;
    void client.receive(encodeFrame(TunnelReplyType.opened, id, {}));
    const stream = await opening;
    stream.on('error', () => undefined);
    const chunk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < 40 && client.lost === undefined; i++) {
      void client.receive(encodeFrame(TunnelReplyType.data, id, chunk));
    }
    assert.match(client.lost ?? '', /unacknowledged tunnel bytes/);
    assert.ok(stream.destroyed);
  });

  test('an agent older than tunnels: a clear refusal, the connection lives', async () => {
    const { client, sent } = scripted();
    const opening = new AgentTunnels(client).open(8080);
    const id = sent.find((f) => f.type === TunnelRequestType.open)!.id;
    void client.receive(
      encodeFrame(ReplyType.error, id, { errno: 'EPROTO', message: 'unknown frame type 64' }),
    );
    await assert.rejects(opening, /predates preview URLs/);
    assert.equal(client.lost, undefined);
    assert.equal(client.inFlight.requests, 0);
  });

  test('an ack of bytes never sent ends the connection', async () => {
    const { client, sent } = scripted();
    const opening = new AgentTunnels(client).open(8080);
    const id = sent.find((f) => f.type === TunnelRequestType.open)!.id;
    void client.receive(encodeFrame(TunnelReplyType.opened, id, {}));
    const stream = await opening;
    stream.on('error', () => undefined);
    const ack = Buffer.alloc(4);
    ack.writeUInt32BE(1000, 0);
    void client.receive(encodeFrame(TunnelReplyType.ack, id, ack));
    assert.match(client.lost ?? '', /never sent/);
    assert.ok(stream.destroyed);
  });
});

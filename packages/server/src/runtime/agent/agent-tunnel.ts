import { Duplex } from 'node:stream';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type { SandboxTunnels, TunnelByteObserver } from '../sandbox-tunnels.js';
import type { AgentChannel, AgentClient } from './agent-client.js';
import {
  AgentProtocolError,
  parseJsonPayload,
  ReplyType,
  type AgentFrame,
} from './agent-protocol.js';

/** Frames of TCP tunnels (the agent's "tunnels" section, next to the processes one). */
export const TunnelRequestType = {
  open: 0x40,
  data: 0x41,
  /** Half-close: the agent shuts the socket's write side once it wrote what it holds. */
  end: 0x42,
  /** Bytes of the agent's data the worker delivered (its window opens again). */
  ack: 0x43,
  close: 0x44,
} as const;

export const TunnelReplyType = {
  opened: 0xc0,
  data: 0xc1,
  /** The server closed its write side (EOF). */
  end: 0xc2,
  /** The last frame of a tunnel that ended normally. */
  closed: 0xc3,
  error: 0xc4,
  /** Bytes of the worker's data the agent wrote to the socket. */
  ack: 0xc5,
} as const;

/** Largest data frame the worker sends (the agent reads in pieces of 64 KiB too). */
const DATA_CHUNK_BYTES = 64 * 1024;

/**
 * Tunnels over an agent connection: one long-lived request id each. The agent is untrusted:
 * data beyond the window, acknowledgements of bytes never sent and frames out of order end the
 * connection (the session answers 410), never the worker.
 */
export class AgentTunnels implements SandboxTunnels {
  private open_ = 0;

  constructor(private readonly client: AgentClient) {}

  get openCount(): number {
    return this.open_;
  }

  open(port: number, observe?: TunnelByteObserver): Promise<Duplex> {
    return new Promise<Duplex>((resolve, reject) => {
      let stream: TunnelStream | undefined;
      this.open_++;
      let counted = true;
      const uncount = () => {
        if (counted) this.open_--;
        counted = false;
      };
      const channel: AgentChannel = this.client.openChannel({
        onFrame: (frame) => {
          if (stream !== undefined) {
            stream.onFrame(frame);
            return;
          }
          if (frame.type === TunnelReplyType.opened) {
            stream = new TunnelStream(channel, port, observe, uncount);
            resolve(stream);
          } else if (frame.type === TunnelReplyType.error) {
            channel.close();
            uncount();
            reject(openError(frame.payload, port));
          } else if (frame.type === ReplyType.error) {
            // An agent older than tunnels answers "unknown frame type": the image predates them.
            channel.close();
            uncount();
            reject(
              new SandpoolError(
                'invalid_request',
                `This session's sandbox agent cannot open tunnels (its image predates preview URLs); rebuild the image with \`sandpool template build\` and start a new session.`,
              ),
            );
          } else {
            throw new AgentProtocolError(`unexpected frame type ${frame.type} before a tunnel`);
          }
        },
        fail: (error) => {
          if (stream !== undefined) stream.lost(error);
          else {
            uncount();
            reject(error);
          }
        },
      });
      channel.send(TunnelRequestType.open, { port });
    });
  }
}

/**
 * One tunnel as a Node Duplex: writes go to the server in the box (held back while a window of
 * them is unacknowledged), reads come from it (acknowledged once the consumer takes them, so a
 * slow HTTP client holds the server back, not the worker's memory).
 */
class TunnelStream extends Duplex {
  private inUnacked = 0;
  private heldAck = 0;
  private outUnacked = 0;
  /** A write still being sent: pieces go out only while the agent's window has room. */
  private pendingWrite:
    { chunk: Buffer; offset: number; callback: (e?: Error) => void } | undefined;
  private state: 'open' | 'closed' = 'open';
  private gotEnd = false;

  constructor(
    private readonly channel: AgentChannel,
    readonly port: number,
    private readonly observe: TunnelByteObserver | undefined,
    private readonly onGone: () => void,
  ) {
    super({ allowHalfOpen: true });
  }

  onFrame(frame: AgentFrame): void {
    if (this.state === 'closed') return;
    const { windowBytes, maxFrameBytes } = this.channel.limits;
    switch (frame.type) {
      case TunnelReplyType.data: {
        if (this.gotEnd) throw new AgentProtocolError('tunnel data after its end');
        const size = frame.payload.length;
        this.inUnacked += size;
        if (this.inUnacked > windowBytes + maxFrameBytes) {
          throw new AgentProtocolError(`${this.inUnacked} unacknowledged tunnel bytes`);
        }
        this.observe?.('in', size);
        this.heldAck += size;
        if (this.push(frame.payload)) this.flushAck();
        return;
      }
      case TunnelReplyType.ack: {
        if (frame.payload.length !== 4) throw new AgentProtocolError('a malformed tunnel ack');
        const count = frame.payload.readUInt32BE(0);
        if (count > this.outUnacked) {
          throw new AgentProtocolError('a tunnel ack of bytes never sent');
        }
        this.outUnacked -= count;
        this.pumpWrite();
        return;
      }
      case TunnelReplyType.end:
        if (this.gotEnd) throw new AgentProtocolError('a second tunnel end');
        this.gotEnd = true;
        this.push(null);
        return;
      case TunnelReplyType.closed:
        this.finish();
        if (!this.gotEnd) {
          this.gotEnd = true;
          this.push(null);
        }
        return;
      case TunnelReplyType.error: {
        const { errno, message } = errnoOf(frame.payload);
        this.finish();
        this.destroy(new Error(`the connection to port ${this.port} failed: ${errno} ${message}`));
        return;
      }
      default:
        throw new AgentProtocolError(`unexpected frame type ${frame.type} for a tunnel`);
    }
  }

  /** The agent connection is gone (the session ended or was lost). */
  lost(error: Error): void {
    if (this.state === 'closed') return;
    this.finish();
    this.destroy(error);
  }

  override _read(): void {
    this.flushAck();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (e?: Error) => void): void {
    if (this.state === 'closed') {
      callback(new Error(`the tunnel to port ${this.port} is closed`));
      return;
    }
    this.pendingWrite = { chunk, offset: 0, callback };
    this.pumpWrite();
  }

  override _final(callback: (e?: Error) => void): void {
    if (this.state === 'open') this.channel.send(TunnelRequestType.end);
    callback();
  }

  override _destroy(error: Error | null, callback: (e: Error | null) => void): void {
    if (this.state === 'open') {
      this.channel.send(TunnelRequestType.close);
      this.finish();
    }
    this.pumpWrite();
    callback(error);
  }

  private flushAck(): void {
    if (this.heldAck === 0 || this.state === 'closed') return;
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(this.heldAck, 0);
    this.channel.send(TunnelRequestType.ack, payload);
    this.inUnacked -= this.heldAck;
    this.heldAck = 0;
  }

  /** Sends what the window allows of the pending write; its callback runs once all is sent. */
  private pumpWrite(): void {
    const pending = this.pendingWrite;
    if (pending === undefined) return;
    if (this.state === 'closed') {
      this.pendingWrite = undefined;
      pending.callback(new Error(`the tunnel to port ${this.port} is closed`));
      return;
    }
    const { windowBytes } = this.channel.limits;
    while (pending.offset < pending.chunk.length && this.outUnacked < windowBytes) {
      const piece = pending.chunk.subarray(pending.offset, pending.offset + DATA_CHUNK_BYTES);
      this.channel.send(TunnelRequestType.data, piece);
      pending.offset += piece.length;
      this.outUnacked += piece.length;
      this.observe?.('out', piece.length);
    }
    if (pending.offset < pending.chunk.length) return;
    this.pendingWrite = undefined;
    pending.callback();
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.channel.close();
    this.pumpWrite();
    this.onGone();
  }
}

function errnoOf(payload: Buffer): { errno: string; message: string } {
  const body = parseJsonPayload(payload);
  return {
    errno: typeof body.errno === 'string' ? body.errno.slice(0, 32) : 'EIO',
    message: typeof body.message === 'string' ? body.message.slice(0, 200) : 'unknown error',
  };
}

function openError(payload: Buffer, port: number): SandpoolError {
  const { errno, message } = errnoOf(payload);
  if (errno === 'ECONNREFUSED') {
    return new SandpoolError(
      'port_not_listening',
      `Nothing listens on port ${port} in the session; start a server bound to 0.0.0.0 or 127.0.0.1.`,
    );
  }
  if (errno === 'EMFILE') {
    return new SandpoolError(
      'capacity_exhausted',
      `The sandbox has too many open tunnels; close some connections to port ${port}.`,
      1,
    );
  }
  return new SandpoolError(
    'port_not_listening',
    `Could not connect to port ${port} in the session: ${errno} ${message}.`,
  );
}

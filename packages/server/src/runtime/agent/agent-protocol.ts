/**
 * The wire format between the worker and the in-sandbox agent (packages/agent/sandpool_agent.py).
 * Every frame is `u32 BE length | u8 type | u32 BE request id | payload`, where length counts
 * what follows it. Control payloads are UTF-8 JSON; output and file data are raw bytes.
 * Pure code: no I/O, so it is tested without Docker.
 */

/** Frames the worker sends. */
export const RequestType = {
  hello: 0x01,
  exec: 0x02,
  stdin: 0x03,
  stdinEnd: 0x04,
  /** Kills an exec's process group, or abandons a file read or write. */
  cancel: 0x05,
  /** Acknowledges output bytes so the agent may send more (per-request flow control). */
  ack: 0x06,
  ping: 0x07,
  writeOpen: 0x10,
  writeData: 0x11,
  writeEnd: 0x12,
  read: 0x14,
  stat: 0x15,
  list: 0x16,
  remove: 0x17,
} as const;

/** Frames the agent sends. */
export const ReplyType = {
  hello: 0x81,
  stdout: 0x82,
  stderr: 0x83,
  exit: 0x84,
  ok: 0x85,
  error: 0x86,
  data: 0x87,
  pong: 0x88,
  end: 0x89,
} as const;

export type RequestTypeCode = (typeof RequestType)[keyof typeof RequestType];
export type ReplyTypeCode = (typeof ReplyType)[keyof typeof ReplyType];

/** Bytes before the payload: length (4), type (1), request id (4). */
export const FRAME_HEADER_BYTES = 9;

export interface AgentFrame {
  type: number;
  requestId: number;
  payload: Buffer;
}

/** The agent sent something no honest agent sends; the connection cannot be trusted further. */
export class AgentProtocolError extends Error {
  override readonly name = 'AgentProtocolError';
}

/** One frame, ready to write. Objects become JSON; bytes go as they are. */
export function encodeFrame(
  type: number,
  requestId: number,
  payload?: Uint8Array | object,
): Buffer {
  const body =
    payload === undefined
      ? Buffer.alloc(0)
      : payload instanceof Uint8Array
        ? payload
        : Buffer.from(JSON.stringify(payload), 'utf8');
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(body.length + 5, 0);
  header.writeUInt8(type, 4);
  header.writeUInt32BE(requestId, 5);
  return Buffer.concat([header, body]);
}

/** An ack frame: `count` bytes of output were delivered. */
export function encodeAck(requestId: number, count: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(count, 0);
  return encodeFrame(RequestType.ack, requestId, payload);
}

/**
 * Cuts a byte stream into frames in time linear in the bytes received: chunks of an incomplete
 * frame are kept in a list and joined once, when the frame is whole (joining the pending bytes
 * on every chunk made a frame fed in tiny pieces cost quadratic time). A frame larger than
 * `maxFrameBytes` is refused before it is buffered, so a lying length field cannot make the
 * worker allocate. `pendingChunks` lets the caller judge how the incomplete frame arrives.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes received but not yet part of a whole frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** How many received chunks the incomplete frame is spread over. */
  get pendingChunks(): number {
    return this.chunks.length;
  }

  push(chunk: Buffer): AgentFrame[] {
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: AgentFrame[] = [];
    while (this.buffered >= 4) {
      const length = this.peekLength();
      if (length < 5 || length - 5 > this.maxFrameBytes) {
        throw new AgentProtocolError(
          `agent frame of ${length} bytes is outside 5..${this.maxFrameBytes + 5}`,
        );
      }
      if (this.buffered < 4 + length) break;
      // Whole: join once (a single chunk is only sliced), take the frame, keep the rest.
      const joined = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      frames.push({
        type: joined.readUInt8(4),
        requestId: joined.readUInt32BE(5),
        // A copy, so a kept payload does not pin the whole receive buffer.
        payload: Buffer.from(joined.subarray(FRAME_HEADER_BYTES, 4 + length)),
      });
      const rest = joined.subarray(4 + length);
      this.chunks = rest.length === 0 ? [] : [rest];
      this.buffered = rest.length;
    }
    return frames;
  }

  /** The length field of the next frame, read across chunk boundaries without joining them. */
  private peekLength(): number {
    const first = this.chunks[0];
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.alloc(4);
    let filled = 0;
    for (const chunk of this.chunks) {
      filled += chunk.copy(head, filled, 0, Math.min(chunk.length, 4 - filled));
      if (filled === 4) break;
    }
    return head.readUInt32BE(0);
  }
}

/** Parses a JSON payload into an object, or throws a protocol error. */
export function parseJsonPayload(payload: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new AgentProtocolError('agent sent a control frame that is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AgentProtocolError('agent sent a control frame that is not a JSON object');
  }
  return value as Record<string, unknown>;
}

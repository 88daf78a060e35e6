import type { Readable } from 'node:stream';

/**
 * Splits Docker's multiplexed attach stream (non-TTY) into stdout and stderr.
 * Each frame is an 8-byte header [stream, 0, 0, 0, size (uint32 BE)] then `size` bytes.
 * The handler may return a promise to apply backpressure: reading waits for it.
 */
export type FrameHandler = (stream: 'stdout' | 'stderr', payload: Buffer) => void | Promise<void>;

const HEADER_BYTES = 8;

export async function demuxDockerStream(source: Readable, onFrame: FrameHandler): Promise<void> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of source as AsyncIterable<Buffer>) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let offset = 0;
    while (pending.length - offset >= HEADER_BYTES) {
      const size = pending.readUInt32BE(offset + 4);
      if (pending.length - offset - HEADER_BYTES < size) break;
      const kind = pending[offset];
      const payload = pending.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + size);
      offset += HEADER_BYTES + size;
      // 1 is stdout, 2 is stderr; 0 (stdin echo) never comes without a TTY.
      const done = onFrame(kind === 2 ? 'stderr' : 'stdout', payload);
      if (done) await done;
    }
    pending = pending.subarray(offset);
  }
}

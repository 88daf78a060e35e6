/**
 * Keeps at most `limitBytes` of one output stream and notes whether more came. The rest is read
 * and dropped, so a flood cannot grow the worker's memory.
 */
export class OutputCapture {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  truncated = false;

  constructor(private readonly limitBytes: number) {}

  /** Returns the part of `chunk` that fits, empty once the limit is reached. */
  take(chunk: Buffer): Buffer {
    const room = this.limitBytes - this.kept;
    if (chunk.length > room) this.truncated = true;
    const part = room <= 0 ? Buffer.alloc(0) : chunk.subarray(0, room);
    this.kept += part.length;
    return part;
  }

  /** Takes and keeps the part that fits. */
  append(chunk: Buffer): void {
    const part = this.take(chunk);
    if (part.length > 0) this.chunks.push(part);
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

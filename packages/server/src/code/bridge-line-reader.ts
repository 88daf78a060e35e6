/**
 * Splits the kernel bridge's answer (JSON lines) into parsed values. The bridge runs in the
 * sandbox and is untrusted: a line longer than `maxLineBytes` throws instead of growing a buffer,
 * and a line that is not JSON is skipped (and counted).
 */
export class BridgeLineReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Lines that were not JSON. */
  badLines = 0;

  constructor(private readonly maxLineBytes: number) {}

  /** The values of the lines this chunk completes. */
  push(chunk: Buffer): unknown[] {
    const values: unknown[] = [];
    let start = 0;
    for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, start)) {
      this.keep(chunk.subarray(start, at));
      const line = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
      start = at + 1;
      if (line.length === 0) continue;
      try {
        values.push(JSON.parse(line.toString('utf8')));
      } catch {
        this.badLines += 1;
      }
    }
    this.keep(chunk.subarray(start));
    return values;
  }

  /** True when bytes after the last newline are waiting (an answer cut off mid-line). */
  get hasPartialLine(): boolean {
    return this.pendingBytes > 0;
  }

  private keep(part: Buffer): void {
    if (part.length === 0) return;
    if (this.pendingBytes + part.length > this.maxLineBytes) {
      throw new BridgeLineTooLongError(this.maxLineBytes);
    }
    this.pending.push(part);
    this.pendingBytes += part.length;
  }
}

export class BridgeLineTooLongError extends Error {
  constructor(readonly maxLineBytes: number) {
    super(`the code interpreter sent a line over ${maxLineBytes} bytes`);
    this.name = 'BridgeLineTooLongError';
  }
}

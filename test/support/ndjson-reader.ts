/** Reads an NDJSON response line by line, with a deadline per wait. */
export class NdjsonReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private done = false;
  readonly seen: Record<string, unknown>[] = [];

  constructor(response: Response) {
    if (!response.body) throw new Error('no body');
    this.reader = response.body.getReader();
  }

  /** The next event, or undefined at the end of the stream. */
  async next(timeoutMs = 15_000): Promise<Record<string, unknown> | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const newline = this.buffer.indexOf('\n');
      if (newline >= 0) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        const event = JSON.parse(line) as Record<string, unknown>;
        this.seen.push(event);
        return event;
      }
      if (this.done) return undefined;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no event within ${timeoutMs} ms; seen ${JSON.stringify(this.seen)}`);
      let timer: NodeJS.Timeout | undefined;
      const chunk = await Promise.race([
        this.reader.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(`no event within ${timeoutMs} ms; seen ${JSON.stringify(this.seen)}`),
              ),
            left,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      if (chunk.done) this.done = true;
      else this.buffer += this.decoder.decode(chunk.value, { stream: true });
    }
  }

  /** Reads until `predicate` holds for an event; returns it. */
  async until(
    predicate: (event: Record<string, unknown>) => boolean,
    timeoutMs = 15_000,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = await this.next(Math.max(1, deadline - Date.now()));
      if (event === undefined) throw new Error(`stream ended; seen ${JSON.stringify(this.seen)}`);
      if (predicate(event)) return event;
    }
  }

  /** Text of every stdout/stderr event so far. */
  text(): string {
    return this.seen
      .filter((e) => e.type === 'stdout' || e.type === 'stderr')
      .map((e) => String(e.data))
      .join('');
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }
}

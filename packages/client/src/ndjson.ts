/**
 * Splits text that arrives in arbitrary chunks into NDJSON lines. A line may span chunks and a
 * chunk may hold many lines; blank lines are skipped and a trailing `\r` is dropped.
 */
export class NdjsonLineSplitter {
  private pending = '';

  /** Adds a chunk of text and returns the lines it completed. */
  push(chunk: string): string[] {
    const parts = (this.pending + chunk).split('\n');
    this.pending = parts.pop() ?? '';
    return parts.map(stripCr).filter((line) => line.trim() !== '');
  }

  /** Returns what is left once the input ended: a last line without a newline, if any. */
  flush(): string[] {
    const rest = stripCr(this.pending);
    this.pending = '';
    return rest.trim() === '' ? [] : [rest];
  }
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/**
 * Reads an NDJSON byte stream and yields one parsed value a line, as the lines arrive.
 * Throws a `SyntaxError` naming the line when one is not JSON.
 */
export async function* readNdjson(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<unknown> {
  const decoder = new TextDecoder();
  const splitter = new NdjsonLineSplitter();
  for await (const chunk of body) {
    for (const line of splitter.push(decoder.decode(chunk, { stream: true }))) {
      yield parseLine(line);
    }
  }
  for (const line of splitter.push(decoder.decode())) yield parseLine(line);
  for (const line of splitter.flush()) yield parseLine(line);
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch (error) {
    const shown = line.length > 120 ? `${line.slice(0, 120)}…` : line;
    throw new SyntaxError(`not an NDJSON line: ${shown}`, { cause: error });
  }
}

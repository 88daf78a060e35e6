import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NdjsonLineSplitter, readNdjson } from './ndjson.js';

function* chunks(...parts: (string | Uint8Array)[]): Generator<Uint8Array> {
  const encoder = new TextEncoder();
  for (const part of parts) yield typeof part === 'string' ? encoder.encode(part) : part;
}

async function collect(body: Iterable<Uint8Array>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const value of readNdjson(body)) out.push(value);
  return out;
}

describe('NdjsonLineSplitter', () => {
  it('joins a line split over chunks and splits a chunk holding many lines', () => {
    const splitter = new NdjsonLineSplitter();
    assert.deepEqual(splitter.push('{"a":'), []);
    assert.deepEqual(splitter.push('1}\n{"b":2}\n{"c"'), ['{"a":1}', '{"b":2}']);
    assert.deepEqual(splitter.push(':3}\n'), ['{"c":3}']);
    assert.deepEqual(splitter.flush(), []);
  });

  it('drops CR and blank lines, and returns a last line without a newline on flush', () => {
    const splitter = new NdjsonLineSplitter();
    assert.deepEqual(splitter.push('{"a":1}\r\n\n  \n{"b"'), ['{"a":1}']);
    assert.deepEqual(splitter.push(':2}'), []);
    assert.deepEqual(splitter.flush(), ['{"b":2}']);
    assert.deepEqual(splitter.flush(), []);
  });
});

describe('readNdjson', () => {
  it('parses values as their lines complete', async () => {
    const values = await collect(chunks('{"type":"stdout","data":"hi\\n"}\n{"ty', 'pe":"exit"}'));
    assert.deepEqual(values, [{ type: 'stdout', data: 'hi\n' }, { type: 'exit' }]);
  });

  it('keeps a multi-byte character split between chunks whole', async () => {
    const bytes = new TextEncoder().encode('{"data":"é€"}\n');
    const values = await collect(chunks(bytes.subarray(0, 11), bytes.subarray(11)));
    assert.deepEqual(values, [{ data: 'é€' }]);
  });

  it('names a line that is not JSON', async () => {
    await assert.rejects(collect(chunks('{"ok":1}\nnot json\n')), {
      name: 'SyntaxError',
      message: /not an NDJSON line: not json/,
    });
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BridgeLineReader, BridgeLineTooLongError } from './bridge-line-reader.js';

test('parses lines split across chunks and many lines in one chunk', () => {
  const reader = new BridgeLineReader(1024);
  assert.deepEqual(reader.push(Buffer.from('{"a":1}\n{"b"')), [{ a: 1 }]);
  assert.equal(reader.hasPartialLine, true);
  assert.deepEqual(reader.push(Buffer.from(':2}\n\n{"c":3}\n')), [{ b: 2 }, { c: 3 }]);
  assert.equal(reader.hasPartialLine, false);
});

test('skips and counts lines that are not JSON', () => {
  const reader = new BridgeLineReader(1024);
  assert.deepEqual(reader.push(Buffer.from('garbage\n{"ok":true}\n')), [{ ok: true }]);
  assert.equal(reader.badLines, 1);
});

test('a line over the limit throws instead of growing, even when it arrives in pieces', () => {
  const reader = new BridgeLineReader(10);
  reader.push(Buffer.from('12345'));
  assert.throws(() => reader.push(Buffer.from('678901')), BridgeLineTooLongError);
  assert.throws(
    () => new BridgeLineReader(4).push(Buffer.from('"12345"\n')),
    BridgeLineTooLongError,
  );
});

test('keeps multi-byte characters split between chunks whole', () => {
  const reader = new BridgeLineReader(1024);
  const bytes = Buffer.from('{"t":"é€"}\n');
  assert.deepEqual(
    [...reader.push(bytes.subarray(0, 8)), ...reader.push(bytes.subarray(8))],
    [{ t: 'é€' }],
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { demuxDockerStream } from './docker-stream-demuxer.js';

function frame(kind: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = kind;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

test('splits frames even when chunks cut through headers and payloads', async () => {
  const whole = Buffer.concat([frame(1, 'hello '), frame(2, 'oops'), frame(1, 'world')]);
  const chunks = [
    whole.subarray(0, 3),
    whole.subarray(3, 11),
    whole.subarray(11, 20),
    whole.subarray(20),
  ];
  const out: string[] = [];
  const err: string[] = [];
  await demuxDockerStream(Readable.from(chunks), (stream, payload) => {
    (stream === 'stdout' ? out : err).push(payload.toString());
  });
  assert.equal(out.join(''), 'hello world');
  assert.equal(err.join(''), 'oops');
});

test('waits for the handler before reading on (backpressure)', async () => {
  const order: string[] = [];
  await demuxDockerStream(Readable.from([frame(1, 'a'), frame(1, 'b')]), async (_s, payload) => {
    order.push(`start ${payload.toString()}`);
    await new Promise((r) => setTimeout(r, 5));
    order.push(`end ${payload.toString()}`);
  });
  assert.deepEqual(order, ['start a', 'end a', 'start b', 'end b']);
});

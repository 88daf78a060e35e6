import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AgentProtocolError,
  encodeAck,
  encodeFrame,
  FrameDecoder,
  parseJsonPayload,
  ReplyType,
  RequestType,
} from './agent-protocol.js';

describe('agent protocol framing', () => {
  test('a frame is length, type, request id and payload', () => {
    const frame = encodeFrame(RequestType.exec, 0x01020304, Buffer.from('hi'));
    assert.deepEqual([...frame], [0, 0, 0, 7, 0x02, 1, 2, 3, 4, 0x68, 0x69]);
    const ack = encodeAck(9, 65536);
    assert.deepEqual([...ack.subarray(9)], [0, 1, 0, 0]);
  });

  test('frames split at every byte boundary decode to the same frames', () => {
    const stream = Buffer.concat([
      encodeFrame(ReplyType.stdout, 1, Buffer.from([0, 255, 10, 13])),
      encodeFrame(ReplyType.exit, 1, { code: 0 }),
      encodeFrame(ReplyType.pong, 0),
    ]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const decoder = new FrameDecoder(1024);
      const frames = [
        ...decoder.push(stream.subarray(0, cut)),
        ...decoder.push(stream.subarray(cut)),
      ];
      assert.equal(frames.length, 3);
      assert.deepEqual([...(frames[0]?.payload ?? [])], [0, 255, 10, 13]);
      assert.deepEqual(parseJsonPayload(frames[1]?.payload ?? Buffer.alloc(0)), { code: 0 });
      assert.equal(frames[2]?.type, ReplyType.pong);
      assert.equal(decoder.bufferedBytes, 0);
    }
  });

  test('an oversized or undersized length is refused before buffering', () => {
    const big = Buffer.alloc(4);
    big.writeUInt32BE(2000 + 5);
    assert.throws(() => new FrameDecoder(1024).push(big), AgentProtocolError);
    assert.throws(() => new FrameDecoder(1024).push(Buffer.from([0, 0, 0, 2])), AgentProtocolError);
  });

  test('control payloads must be JSON objects', () => {
    assert.throws(() => parseJsonPayload(Buffer.from('nope')), AgentProtocolError);
    assert.throws(() => parseJsonPayload(Buffer.from('[1]')), AgentProtocolError);
  });

  test('decoding is linear: a 1 MiB frame fed in 64-byte pieces (micro-benchmark)', () => {
    // Joining the pending bytes on every chunk took 1.1 s here (4.8 s in the report).
    const frame = encodeFrame(ReplyType.stdout, 1, Buffer.alloc(1024 * 1024 - 16, 7));
    const decoder = new FrameDecoder(1024 * 1024);
    const started = performance.now();
    let frames = 0;
    for (let offset = 0; offset < frame.length; offset += 64) {
      frames += decoder.push(frame.subarray(offset, offset + 64)).length;
      // Linear by construction: an unfinished frame's pieces are kept as they came, not joined
      // (copied) on every push; they are joined once, when the frame is whole.
      if (frames === 0) assert.equal(decoder.pendingChunks, offset / 64 + 1);
    }
    const ms = performance.now() - started;
    // The time is printed, not asserted: this machine is shared and timing asserts are flaky.
    console.log(`decoder: 1 MiB frame in 64-byte pieces decoded in ${ms.toFixed(1)} ms`);
    assert.equal(frames, 1);
    assert.equal(decoder.bufferedBytes, 0);
    assert.equal(decoder.pendingChunks, 0);
  });
});

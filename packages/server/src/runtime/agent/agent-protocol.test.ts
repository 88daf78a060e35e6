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
});

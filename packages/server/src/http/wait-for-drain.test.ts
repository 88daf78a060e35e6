import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { waitForDrain } from './wait-for-drain.js';

test('waiting for drain a thousand times leaves no listener behind', async () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  try {
    const out = new PassThrough({ highWaterMark: 4 });
    const baseline = { drain: out.listenerCount('drain'), close: out.listenerCount('close') };
    for (let i = 0; i < 1000; i += 1) {
      assert.equal(out.write('12345678'), false, 'the buffer is full after each write');
      const waiting = waitForDrain(out);
      assert.equal(out.listenerCount('close'), baseline.close + 1);
      out.read(); // The reader takes everything: 'drain' follows.
      await waiting;
      assert.equal(out.listenerCount('drain'), baseline.drain, `drain listeners after wait ${i}`);
      assert.equal(out.listenerCount('close'), baseline.close, `close listeners after wait ${i}`);
    }
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      warnings.filter((w) => w.name === 'MaxListenersExceededWarning'),
      [],
    );
  } finally {
    process.off('warning', onWarning);
  }
});

test('a stream that closes instead of draining ends the wait, and its listeners', async () => {
  const out = new PassThrough({ highWaterMark: 4 });
  assert.equal(out.write('12345678'), false);
  const waiting = waitForDrain(out);
  out.destroy();
  await waiting;
  assert.equal(out.listenerCount('drain'), 0);
  assert.equal(out.listenerCount('close'), 0);
});

test('a stream with room, or already closed, resolves at once without a listener', async () => {
  const roomy = new PassThrough();
  await waitForDrain(roomy);
  assert.equal(roomy.listenerCount('drain'), 0);
  const closed = new PassThrough({ highWaterMark: 1 });
  closed.write('xx');
  closed.destroy();
  await waitForDrain(closed);
  assert.equal(closed.listenerCount('drain'), 0);
});

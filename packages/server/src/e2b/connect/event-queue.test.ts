import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventQueue, keepaliveIntervalMs, type TimerStart } from './event-queue.js';

/** A manual timer: `fire()` runs what is due, nothing runs by itself. */
function manualTimer(): { timer: TimerStart; fire: () => void; pending: () => number } {
  const due = new Set<() => void>();
  return {
    timer: (fn) => {
      due.add(fn);
      return () => due.delete(fn);
    },
    fire: () => {
      const fns = [...due];
      due.clear();
      for (const fn of fns) fn();
    },
    pending: () => due.size,
  };
}

test('items arrive in order and the reader ends after end()', async () => {
  const queue = new EventQueue<number>({ capacity: 4 });
  await queue.push(1);
  await queue.push(2);
  queue.end();
  const seen: number[] = [];
  for await (const item of queue) seen.push(item);
  assert.deepEqual(seen, [1, 2]);
});

test('push waits while the queue is full (backpressure), and close frees it', async () => {
  const queue = new EventQueue<number>({ capacity: 1 });
  await queue.push(1);
  let second = false;
  const pending = queue.push(2).then(() => (second = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(second, false);
  queue.close();
  await pending;
  assert.equal(second, true);
});

test('fail() throws to the reader after the queued items', async () => {
  const queue = new EventQueue<string>({ capacity: 4 });
  await queue.push('a');
  queue.fail(new Error('gone'));
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const item of queue) seen.push(item);
  }, /gone/);
  assert.deepEqual(seen, ['a']);
});

test('an idle reader gets keepalives; a reader that leaves cancels its timer', async () => {
  const clock = manualTimer();
  const queue = new EventQueue<string>({
    capacity: 4,
    timer: clock.timer,
    keepalive: { intervalMs: 50_000, value: () => 'keepalive' },
  });
  const iterator = queue[Symbol.asyncIterator]();
  const first = iterator.next();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(clock.pending(), 1);
  clock.fire();
  assert.deepEqual(await first, { value: 'keepalive', done: false });
  const second = iterator.next();
  await queue.push('data');
  assert.deepEqual(await second, { value: 'data', done: false });
  assert.equal(clock.pending(), 0);
  await iterator.return?.();
  assert.equal(await queue.push('late').then(() => 'dropped'), 'dropped');
});

test('Keepalive-Ping-Interval is read in seconds, bounded', () => {
  assert.equal(keepaliveIntervalMs('50'), 50_000);
  assert.equal(keepaliveIntervalMs('0'), undefined);
  assert.equal(keepaliveIntervalMs('abc'), undefined);
  assert.equal(keepaliveIntervalMs(null), undefined);
  assert.equal(keepaliveIntervalMs('99999'), 600_000);
});

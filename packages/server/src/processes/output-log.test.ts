import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OutputBudget, OutputLog, type OutputCursor } from './output-log.js';

function readAll(log: OutputLog, cursor: OutputCursor = { seq: 0, offset: 0 }) {
  const { droppedBytes, chunks } = log.read(cursor);
  const last = chunks.at(-1);
  return {
    droppedBytes,
    text: chunks.map((c) => c.data).join(''),
    next: last ? OutputLog.after(last) : cursor,
  };
}

describe('OutputLog', () => {
  test('replays everything kept, then only what came after a cursor', () => {
    const log = new OutputLog(1024, new OutputBudget(1 << 20));
    log.append('stdout', Buffer.from('one\n'));
    log.append('stderr', Buffer.from('two\n'));
    const first = readAll(log);
    assert.deepEqual([first.droppedBytes, first.text], [0, 'one\ntwo\n']);
    log.append('stdout', Buffer.from('three\n'));
    assert.equal(readAll(log, first.next).text, 'three\n');
  });

  test('drops the oldest output past its limit and tells a reader how much it missed', () => {
    const log = new OutputLog(200, new OutputBudget(1 << 20));
    for (let i = 0; i < 10; i++) log.append('stdout', Buffer.from(`${i}`.repeat(50)));
    const read = readAll(log);
    assert.ok(read.droppedBytes >= 400, `dropped ${read.droppedBytes}`);
    assert.ok(read.text.endsWith('9'.repeat(50)));
    assert.equal(read.droppedBytes + Buffer.byteLength(read.text), 500);
  });

  test('never tears a character split across chunks', () => {
    const log = new OutputLog(1024, new OutputBudget(1 << 20));
    const euro = Buffer.from('€');
    log.append('stdout', euro.subarray(0, 1));
    log.append('stdout', euro.subarray(1));
    log.close();
    assert.equal(readAll(log).text, '€');
  });

  test('the worker budget is shared: a full budget makes a log drop its own output', () => {
    const budget = new OutputBudget(300);
    const quiet = new OutputLog(1000, budget);
    const loud = new OutputLog(1000, budget);
    quiet.append('stdout', Buffer.from('q'.repeat(100)));
    for (let i = 0; i < 20; i++) loud.append('stdout', Buffer.from('l'.repeat(50)));
    assert.equal(readAll(quiet).text, 'q'.repeat(100)); // not evicted by the loud one
    assert.ok(budget.usedBytes <= 300);
    loud.release();
    quiet.release();
    assert.equal(budget.usedBytes, 0);
  });

  test('a waiting reader is woken by output, by close, and leaves nothing behind on abort', async () => {
    const log = new OutputLog(1024, new OutputBudget(1 << 20));
    const woken = log.changed();
    log.append('stdout', Buffer.from('x'));
    await woken;
    const controller = new AbortController();
    const aborted = log.changed(controller.signal);
    assert.equal(log.waiting, 1);
    controller.abort();
    await aborted;
    assert.equal(log.waiting, 0);
    const closing = log.changed();
    log.close();
    await closing;
    assert.equal(log.waiting, 0);
    assert.ok(log.ended);
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMAND_CHARS, ExecHistory, type ExecRecord } from './exec-history.js';

const entry = (command: string, exitCode: number | null = 0): ExecRecord => ({
  command,
  started_at: '2026-01-01T00:00:00.000Z',
  exit_code: exitCode,
  duration_ms: 5,
  timed_out: false,
  error: null,
});

test('keeps the newest execs first, at most its capacity, per key', () => {
  const history = new ExecHistory<object>(3);
  const a = {};
  const b = {};
  for (const command of ['one', 'two', 'three', 'four']) history.record(a, entry(command));
  history.record(b, entry('other', 2));
  assert.deepEqual(
    history.recent(a).map((e) => e.command),
    ['four', 'three', 'two'],
  );
  assert.deepEqual(
    history.recent(b).map((e) => [e.command, e.exit_code]),
    [['other', 2]],
  );
  assert.deepEqual(history.recent({}), []);
});

test('cuts long commands and hands out copies', () => {
  const history = new ExecHistory<object>(2);
  const key = {};
  history.record(key, entry('x'.repeat(COMMAND_CHARS * 3)));
  const listed = history.recent(key);
  assert.equal(listed[0]?.command.length, COMMAND_CHARS);
  listed.pop();
  assert.equal(history.recent(key).length, 1);
});

test('a capacity of 0 keeps nothing', () => {
  const history = new ExecHistory<object>(0);
  const key = {};
  history.record(key, entry('ls'));
  assert.deepEqual(history.recent(key), []);
});

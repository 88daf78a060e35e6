import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CellCapture } from './cell-capture.js';

const end = {
  execution_count: 3,
  duration_ms: 7,
  context_id: 'ctx_1',
  language: 'python' as const,
};

test('stdout and stderr are capped separately and the cut is reported', () => {
  const capture = new CellCapture({ outputBytes: 5, resultBytes: 100, maxResults: 10 });
  assert.deepEqual(capture.take({ type: 'stdout', data: 'abc' }), { type: 'stdout', data: 'abc' });
  assert.deepEqual(capture.take({ type: 'stdout', data: 'defg' }), { type: 'stdout', data: 'de' });
  assert.equal(capture.take({ type: 'stdout', data: 'more' }), undefined);
  assert.deepEqual(capture.take({ type: 'stderr', data: 'err' }), { type: 'stderr', data: 'err' });
  const answer = capture.execution(end);
  assert.deepEqual([answer.stdout, answer.stderr, answer.truncated], ['abcde', 'err', true]);
});

test('results past the total cap or the count are dropped, the first error kept', () => {
  const capture = new CellCapture({ outputBytes: 100, resultBytes: 80, maxResults: 2 });
  assert.ok(capture.take({ type: 'result', is_main_result: false, text: 'one' }));
  assert.equal(
    capture.take({ type: 'result', is_main_result: false, text: 'x'.repeat(80) }),
    undefined,
  );
  assert.ok(capture.take({ type: 'result', is_main_result: true, text: 'two' }));
  assert.equal(capture.take({ type: 'result', is_main_result: false, text: 'three' }), undefined);
  capture.take({ type: 'error', name: 'A', value: '', traceback: '' });
  assert.equal(capture.take({ type: 'error', name: 'B', value: '', traceback: '' }), undefined);
  const answer = capture.execution(end);
  assert.deepEqual(
    answer.results.map((r) => r.text),
    ['one', 'two'],
  );
  assert.equal(answer.error?.name, 'A');
  assert.equal(answer.truncated, true);
  assert.deepEqual(capture.end(end), { type: 'end', ...end, truncated: true });
});

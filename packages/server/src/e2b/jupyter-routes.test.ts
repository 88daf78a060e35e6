import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SandpoolError } from '../errors/sandpool-error.js';
import { e2bLinesOf, languageOf } from './jupyter-routes.js';

test('code events become the lines @e2b/code-interpreter parses', () => {
  assert.deepEqual(
    e2bLinesOf({ type: 'stdout', data: 'hi\n' }).map(({ type, text }) => ({ type, text })),
    [{ type: 'stdout', text: 'hi\n' }],
  );
  assert.deepEqual(
    e2bLinesOf({
      type: 'result',
      text: '42',
      png: 'iVBOR',
      is_main_result: true,
      extra: { 'application/vnd.custom': { a: 1 }, text: 'never over a format' },
      truncated: false,
    }),
    [
      {
        type: 'result',
        text: '42',
        png: 'iVBOR',
        is_main_result: true,
        'application/vnd.custom': { a: 1 },
      },
    ],
  );
  assert.deepEqual(
    e2bLinesOf({ type: 'error', name: 'ValueError', value: 'bad', traceback: 'tb' }),
    [{ type: 'error', name: 'ValueError', value: 'bad', traceback: 'tb' }],
  );
  const end = {
    type: 'end' as const,
    duration_ms: 3,
    context_id: 'c',
    language: 'python' as const,
    truncated: false,
  };
  assert.deepEqual(e2bLinesOf({ ...end, execution_count: 7 }), [
    { type: 'number_of_executions', execution_count: 7 },
    { type: 'end_of_execution' },
  ]);
  assert.deepEqual(e2bLinesOf({ ...end, execution_count: null }), [{ type: 'end_of_execution' }]);
});

test('languages: python and bash by E2B’s names; the others refused', () => {
  assert.equal(languageOf(undefined), undefined);
  assert.equal(languageOf(null), undefined);
  assert.equal(languageOf('Python'), 'python');
  assert.equal(languageOf('bash'), 'bash');
  assert.throws(() => languageOf('js'), SandpoolError);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clip, readBridgeLine, readContextView } from './code-event.js';

test('output and result lines become events with only the known fields', () => {
  assert.deepEqual(readBridgeLine({ type: 'stdout', data: 'hi', extra: 1 }, 100), {
    kind: 'event',
    event: { type: 'stdout', data: 'hi' },
  });
  assert.deepEqual(
    readBridgeLine({ type: 'result', is_main_result: true, text: '2', evil: 'x' }, 100),
    { kind: 'event', event: { type: 'result', is_main_result: true, text: '2' } },
  );
});

test('anything else is dropped: unknown types, wrong field types, non-objects', () => {
  for (const value of [null, 5, 'x', [], { type: 'exit' }, { type: 'stdout', data: 5 }, {}]) {
    assert.equal(readBridgeLine(value, 100), undefined, JSON.stringify(value));
  }
});

test('text over the field cap is cut; an image over it or not base64 is left out', () => {
  const line = readBridgeLine(
    { type: 'result', text: 'a'.repeat(50), png: 'A'.repeat(50), jpeg: '<script>' },
    10,
  );
  assert.deepEqual(line, {
    kind: 'event',
    event: { type: 'result', is_main_result: false, text: 'a'.repeat(10), truncated: true },
  });
});

test('an error keeps its flags only when they are true', () => {
  assert.deepEqual(
    readBridgeLine(
      {
        type: 'error',
        name: 'TimeoutError',
        value: 'v',
        traceback: 't',
        timed_out: true,
        context_restarted: 'yes',
      },
      100,
    ),
    {
      kind: 'event',
      event: { type: 'error', name: 'TimeoutError', value: 'v', traceback: 't', timed_out: true },
    },
  );
  assert.deepEqual(readBridgeLine({ type: 'error' }, 100), {
    kind: 'event',
    event: { type: 'error', name: 'Error', value: '', traceback: '' },
  });
});

test('end needs a well-formed context id; a bad count becomes null', () => {
  assert.equal(readBridgeLine({ type: 'end', context_id: '../../etc' }, 100), undefined);
  assert.deepEqual(readBridgeLine({ type: 'end', context_id: 'ctx_1', execution_count: -3 }, 100), {
    kind: 'end',
    executionCount: null,
    contextId: 'ctx_1',
    language: 'python',
    contextRestarted: false,
    truncated: false,
  });
});

test('failure messages are bounded', () => {
  const line = readBridgeLine({ type: 'failure', code: 'busy', message: 'm'.repeat(10_000) }, 100);
  assert.equal(line?.kind, 'failure');
  assert.equal(line?.kind === 'failure' ? line.message.length : 0, 4096);
});

test('context views are checked', () => {
  assert.deepEqual(readContextView({ context_id: 'ctx_a', language: 'bash', cwd: '/tmp', x: 1 }), {
    context_id: 'ctx_a',
    language: 'bash',
    cwd: '/tmp',
  });
  assert.equal(readContextView({ context_id: 'ctx_a', language: 'ruby', cwd: '/tmp' }), undefined);
});

test('clip never splits a character', () => {
  assert.equal(clip('ééé', 3), 'é');
  assert.equal(clip('short', 100), 'short');
});

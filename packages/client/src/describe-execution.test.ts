import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Execution } from './code-interpreter.js';
import { describeExecution, imagesOf } from './describe-execution.js';

// A 2x3 PNG's first bytes: signature, then the IHDR chunk with width 2 and height 3.
const PNG = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]),
  Buffer.from('IHDR'),
  Buffer.from([0, 0, 0, 2, 0, 0, 0, 3, 8, 6, 0, 0, 0]),
]).toString('base64');

const base: Execution = {
  results: [],
  logs: { stdout: [], stderr: [] },
  error: undefined,
  executionCount: 4,
  durationMs: 12,
  contextId: 'ctx_1',
  truncated: false,
  text: undefined,
};

test('images are described with their size, never dumped as base64', () => {
  const text = describeExecution(
    {
      ...base,
      logs: { stdout: ['plotted\n'], stderr: [] },
      results: [
        { isMainResult: false, png: PNG, text: '<Figure size 640x480 with 1 Axes>' },
        { isMainResult: true, text: '42' },
      ],
    },
    1000,
  );
  assert.match(text, /^ok \[4\] \(12 ms\)/);
  assert.match(text, /stdout:\nplotted/);
  assert.match(text, /display 1:\n\[image\/png image 2x3 px, \d+ bytes; not shown as text\]/);
  assert.match(text, /result:\n42/);
  assert.ok(!text.includes(PNG));
});

test('the error comes first, with what happened to the variables', () => {
  const text = describeExecution(
    {
      ...base,
      error: {
        name: 'TimeoutError',
        value: 'interrupted',
        traceback: 'KeyboardInterrupt',
        timedOut: true,
        contextRestarted: false,
      },
    },
    1000,
  );
  assert.match(
    text,
    /^error \[4\]: TimeoutError: interrupted\nnote: .*variables defined before it are kept/,
  );
});

test('imagesOf reads a PNG header and tolerates what is not one', () => {
  assert.deepEqual(
    imagesOf({ isMainResult: false, png: PNG }).map((i) => [i.width, i.height]),
    [[2, 3]],
  );
  assert.equal(imagesOf({ isMainResult: false, png: 'bm90IGEgcG5n' })[0]?.width, undefined);
});

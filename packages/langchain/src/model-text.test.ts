import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clipForModel, describeExecResult } from './model-text.js';

describe('clipForModel', () => {
  it('leaves short text alone', () => {
    assert.equal(clipForModel('hello', 10, 'stdout'), 'hello');
  });

  it('keeps the head and the tail and says how much it left out', () => {
    const text = `${'a'.repeat(500)}${'b'.repeat(500)}`;
    const clipped = clipForModel(text, 100, 'stdout');
    assert.ok(clipped.startsWith('a'.repeat(40)));
    assert.ok(clipped.endsWith('b'.repeat(60)));
    assert.match(clipped, /900 characters of stdout omitted/);
  });
});

describe('describeExecResult', () => {
  it('shows the exit code, both streams and a timeout note', () => {
    const text = describeExecResult(
      {
        stdout: '42\n',
        stderr: '',
        exitCode: 137,
        durationMs: 5,
        timedOut: true,
        truncated: false,
      },
      100,
      1000,
    );
    assert.match(text, /^exit_code: 137/);
    assert.match(text, /stdout:\n42/);
    assert.match(text, /stderr: \(empty\)/);
    assert.match(text, /timeout of 1000 ms/);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  FileNotFoundError,
  InvalidPathError,
  RuntimeUnavailableError,
  SessionLostError,
} from './errors.js';
import { clipForModel, describeExecResult, isCorrectableByModel } from './model-text.js';

describe('text for a model', () => {
  it('leaves short output alone and keeps the head and tail of long output', () => {
    assert.equal(clipForModel('short', 100, 'stdout'), 'short');
    const clipped = clipForModel(`${'a'.repeat(1000)}${'z'.repeat(1000)}`, 100, 'stdout');
    assert.ok(clipped.startsWith('a'.repeat(40)));
    assert.ok(clipped.endsWith('z'.repeat(60)));
    assert.match(clipped, /1900 characters of stdout omitted/);
  });

  it('puts the exit code first, shows both streams, and notes a timeout and capped output', () => {
    const text = describeExecResult(
      {
        stdout: '42\n',
        stderr: '',
        exitCode: 137,
        durationMs: 1000,
        timedOut: true,
        truncated: true,
      },
      100,
      1,
    );
    assert.match(text, /^exit_code: 137 \(1000 ms\)\n/);
    assert.match(text, /timeout of 1 s/);
    assert.match(text, /first 1 MiB/);
    assert.match(text, /stdout:\n42/);
    assert.match(text, /stderr: \(empty\)/);
  });
});

describe('errors a model can correct', () => {
  it('are the caller mistakes, not the failures of the service', () => {
    assert.equal(isCorrectableByModel(new FileNotFoundError('gone')), true);
    assert.equal(isCorrectableByModel(new InvalidPathError('bad')), true);
    assert.equal(isCorrectableByModel(new SessionLostError('lost')), false);
    assert.equal(isCorrectableByModel(new RuntimeUnavailableError('down')), false);
    assert.equal(isCorrectableByModel(new Error('other')), false);
  });
});

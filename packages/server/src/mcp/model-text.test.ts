import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clipForModel } from './model-text.js';
import { describeExecResult } from './sandbox-mcp-server.js';

describe('text for the model', () => {
  it('leaves short output alone and keeps the head and tail of long output', () => {
    assert.equal(clipForModel('short', 100, 'stdout'), 'short');
    const clipped = clipForModel(`${'a'.repeat(1000)}${'z'.repeat(1000)}`, 100, 'stdout');
    assert.ok(clipped.startsWith('a'.repeat(40)));
    assert.ok(clipped.endsWith('z'.repeat(60)));
    assert.match(clipped, /1900 characters of stdout omitted/);
  });

  it('puts the exit code first and notes a timeout', () => {
    const text = describeExecResult(
      {
        stdout: '',
        stderr: 'boom\n',
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
    assert.match(text, /stdout: \(empty\)\nstderr:\nboom\n$/);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collectEnvPair, execTarget, parseBatchText, parsePositiveInt } from './cli-args.js';

describe('parseBatchText', () => {
  it('keeps one command a line, skipping blanks and comments', () => {
    const text = '# setup\necho one\n\n   \npython3 --version\r\n  # indented comment\nls -la\n';
    assert.deepEqual(parseBatchText(text), ['echo one', 'python3 --version', 'ls -la']);
  });

  it('joins a line ending in a backslash with the next', () => {
    assert.deepEqual(parseBatchText('echo a \\\n  b\necho c'), ['echo a   b', 'echo c']);
    assert.deepEqual(parseBatchText('echo end \\'), ['echo end ']);
  });
});

describe('argument parsers', () => {
  it('collects KEY=VALUE pairs, values may hold "="', () => {
    assert.deepEqual(collectEnvPair('B=x=y', collectEnvPair('A=1')), { A: '1', B: 'x=y' });
    assert.throws(() => collectEnvPair('=1'), /KEY=VALUE/);
    assert.throws(() => collectEnvPair('NOVALUE'), /KEY=VALUE/);
  });

  it('accepts only whole numbers above zero', () => {
    assert.equal(parsePositiveInt('1500'), 1500);
    assert.throws(() => parsePositiveInt('0'));
    assert.throws(() => parsePositiveInt('1.5'));
    assert.throws(() => parsePositiveInt('ten'));
  });

  it('runs one word through the shell and several as argv', () => {
    assert.equal(execTarget(['echo hi | wc -c']), 'echo hi | wc -c');
    assert.deepEqual(execTarget(['ls', '-la']), ['ls', '-la']);
  });
});

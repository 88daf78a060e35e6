import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutputCapture } from './output-capture.js';

test('keeps everything under the limit', () => {
  const c = new OutputCapture(10);
  c.append(Buffer.from('hello'));
  c.append(Buffer.from('12345'));
  assert.equal(c.text(), 'hello12345');
  assert.equal(c.truncated, false);
});

test('cuts at the limit and says so', () => {
  const c = new OutputCapture(8);
  c.append(Buffer.from('hello'));
  c.append(Buffer.from('world'));
  c.append(Buffer.from('more'));
  assert.equal(c.text(), 'hellowor');
  assert.equal(c.truncated, true);
});

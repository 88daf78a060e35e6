import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secretMatches } from './secret-match.js';

test('accepts the same secret only', () => {
  assert.equal(secretMatches('abc', 'abc'), true);
  assert.equal(secretMatches('abd', 'abc'), false);
  assert.equal(secretMatches('abcd', 'abc'), false);
});

test('refuses a missing or empty secret', () => {
  assert.equal(secretMatches(undefined, 'abc'), false);
  assert.equal(secretMatches('', ''), false);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBearerCheck } from './auth.js';

test('accepts the right key and refuses the rest', () => {
  const check = createBearerCheck('s3cret-key-of-some-length');
  assert.doesNotThrow(() => check('Bearer s3cret-key-of-some-length'));
  for (const bad of [
    undefined,
    '',
    'Bearer',
    'Bearer wrong',
    'Basic s3cret-key-of-some-length',
    'Bearer s3cret-key-of-some-lengthX',
  ]) {
    assert.throws(
      () => check(bad),
      (e: { code?: string }) => e.code === 'unauthorized',
    );
  }
});

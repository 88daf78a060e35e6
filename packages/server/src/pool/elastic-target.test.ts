import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ElasticTarget } from './elastic-target.js';

const options = { base: 5, min: 2, max: 20, shrinkAfterMs: 30_000 };

test('misses grow the target by one each, up to max; hits leave it', () => {
  const target = new ElasticTarget(options, 0);
  assert.equal(target.value, 5);
  target.onClaim(1, true);
  assert.equal(target.value, 5);
  for (let i = 0; i < 3; i++) target.onClaim(2, false);
  assert.equal(target.value, 8);
  for (let i = 0; i < 50; i++) target.onClaim(3, false);
  assert.equal(target.value, 20);
});

test('after a calm period the target steps back toward the base, never below it', () => {
  const target = new ElasticTarget(options, 0);
  for (let i = 0; i < 15; i++) target.onClaim(1000, false);
  assert.equal(target.value, 20);
  assert.equal(target.tick(30_999), false, 'not calm long enough');
  assert.equal(target.tick(31_000), true);
  assert.equal(target.value, 12); // half of the 15 above base, rounded up, removed
  assert.equal(target.tick(31_001), false, 'each step waits a full period');
  target.tick(61_000);
  assert.equal(target.value, 8);
  target.tick(91_000);
  target.tick(121_000);
  target.tick(151_000);
  assert.equal(target.value, 5);
  assert.equal(target.tick(500_000), false);
  assert.equal(target.value, 5);
});

test('a miss during the calm period restarts it', () => {
  const target = new ElasticTarget(options, 0);
  target.onClaim(0, false);
  target.onClaim(20_000, false);
  assert.equal(target.tick(30_000), false);
  assert.equal(target.tick(50_000), true);
});

test('min and max bound the base too', () => {
  assert.equal(new ElasticTarget({ ...options, base: 0, min: 2 }, 0).value, 2);
  assert.equal(new ElasticTarget({ ...options, base: 50 }, 0).value, 20);
  assert.throws(() => new ElasticTarget({ ...options, min: 30 }, 0));
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelayMs, DEFAULT_BACKOFF, sleep } from './backoff.js';

describe('backoffDelayMs', () => {
  it('doubles from the initial delay up to the cap, with jitter in the upper half', () => {
    assert.equal(backoffDelayMs(0, undefined, 60_000, DEFAULT_BACKOFF, 0), 125);
    assert.equal(backoffDelayMs(0, undefined, 60_000, DEFAULT_BACKOFF, 0.999), 250);
    assert.equal(backoffDelayMs(3, undefined, 60_000, DEFAULT_BACKOFF, 0), 1000);
    assert.equal(backoffDelayMs(30, undefined, 60_000, DEFAULT_BACKOFF, 0), 2500);
    assert.equal(backoffDelayMs(30, undefined, 60_000, DEFAULT_BACKOFF, 0.999), 4998);
  });

  it('never waits less than Retry-After, nor past the deadline', () => {
    assert.equal(backoffDelayMs(0, 2000, 60_000, DEFAULT_BACKOFF, 0.5), 2000);
    assert.equal(backoffDelayMs(0, 2000, 700, DEFAULT_BACKOFF, 0.5), 700);
    assert.equal(backoffDelayMs(5, undefined, 0, DEFAULT_BACKOFF, 0.5), 0);
  });
});

describe('sleep', () => {
  it('rejects with the abort reason', async () => {
    const controller = new AbortController();
    const pending = sleep(10_000, controller.signal);
    controller.abort(new Error('stop'));
    await assert.rejects(pending, { message: 'stop' });
  });
});

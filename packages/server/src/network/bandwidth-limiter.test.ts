import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BandwidthLimiter } from './bandwidth-limiter.js';

describe('BandwidthLimiter', () => {
  it('lets a second of burst through, then spaces bytes out at the rate', () => {
    let now = 0;
    const limiter = new BandwidthLimiter(1000, () => now);
    assert.equal(limiter.take(1000), 0);
    assert.equal(limiter.take(500), 500); // 500 bytes owed at 1000 B/s
    now += 500;
    assert.equal(limiter.take(0), 0);
    assert.equal(limiter.take(1000), 1000);
    now += 10_000; // Idle time refills at most one second's worth.
    assert.equal(limiter.take(1000), 0);
    assert.ok(limiter.take(1) > 0);
  });

  it('never waits when unlimited', () => {
    const limiter = new BandwidthLimiter(0, () => 0);
    assert.equal(limiter.take(1e9), 0);
  });
});

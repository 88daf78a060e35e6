import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelBudget } from './agent-channel-budget.js';

describe('agent channel budget', () => {
  test('chunks over the budget of a 100 ms slice pause reading until the slice ends', () => {
    const budget = new ChannelBudget({ chunksPerSecond: 100, bytesPerSecond: 1e9 });
    for (let i = 0; i < 10; i++) assert.equal(budget.take(64, 1000), 0);
    assert.equal(budget.take(64, 1030), 70);
    assert.equal(budget.take(64, 1099), 1);
    assert.equal(budget.take(64, 1100), 0, 'a new slice starts afresh');
  });

  test('bytes over the budget pause reading too', () => {
    const budget = new ChannelBudget({ chunksPerSecond: 1e9, bytesPerSecond: 10_000 });
    assert.equal(budget.take(1000, 0), 0);
    assert.equal(budget.take(1, 50), 50);
    assert.equal(budget.pausedSlices, 1);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { McpSessionExpiry } from './mcp-session-expiry.js';

function setUp() {
  const clock = { ms: 0, now: () => clock.ms };
  const expiry = new McpSessionExpiry({ idleTimeoutMs: 300_000, hangUpGraceMs: 15_000, clock });
  return { clock, expiry };
}

describe('McpSessionExpiry', () => {
  it('ends a session idle for the lease, not before', () => {
    const { clock, expiry } = setUp();
    expiry.track('a');
    clock.ms = 299_999;
    assert.deepEqual(expiry.due(), []);
    clock.ms = 300_000;
    assert.deepEqual(expiry.due(), ['a']);
  });

  it('each request renews the lease, and a long one is never idleness', () => {
    const { clock, expiry } = setUp();
    expiry.track('a');
    clock.ms = 200_000;
    const done = expiry.callStarted('a');
    clock.ms = 900_000;
    assert.deepEqual(expiry.due(), [], 'a command still running');
    done();
    done(); // Twice is harmless.
    clock.ms = 900_000 + 299_999;
    assert.deepEqual(expiry.due(), []);
    clock.ms = 900_000 + 300_000;
    assert.deepEqual(expiry.due(), ['a']);
  });

  it('an open event stream alone does not hold the lease', () => {
    const { clock, expiry } = setUp();
    expiry.track('a');
    expiry.streamOpened('a');
    clock.ms = 300_000;
    assert.deepEqual(expiry.due(), ['a']);
  });

  it('a client that drops its event stream and does not come back ends after the grace', () => {
    const { clock, expiry } = setUp();
    expiry.track('a');
    expiry.track('b');
    const closeA = expiry.streamOpened('a');
    const closeB = expiry.streamOpened('b');
    clock.ms = 10_000;
    closeA();
    closeB();
    clock.ms = 12_000;
    expiry.streamOpened('b'); // b reconnects (as SDK clients do after a network blip).
    clock.ms = 24_999;
    assert.deepEqual(expiry.due(), []);
    clock.ms = 25_000;
    assert.deepEqual(expiry.due(), ['a']);
  });

  it('a request after the hang-up shows the client is alive: back to the idle lease', () => {
    const { clock, expiry } = setUp();
    expiry.track('a');
    expiry.streamOpened('a')();
    clock.ms = 5_000;
    expiry.callStarted('a')();
    clock.ms = 60_000;
    assert.deepEqual(expiry.due(), []);
    clock.ms = 305_000;
    assert.deepEqual(expiry.due(), ['a']);
  });

  it('forgets ended sessions; calls on unknown ids do nothing', () => {
    const { clock, expiry } = setUp();
    expiry.track('a');
    expiry.forget('a');
    expiry.callStarted('zz')();
    expiry.streamOpened('zz')();
    clock.ms = 10_000_000;
    assert.deepEqual(expiry.due(), []);
  });
});

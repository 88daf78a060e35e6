import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SessionRecord } from '../redis/redis-store.js';
import type { SandboxSummary } from '../runtime/sandbox-runtime.js';
import { planReadoption } from './session-readoption.js';

const NOW = 1_000_000;
const worker = { 'sandpool.managed': 'true', 'sandpool.worker': 'w1' };

function record(containerId: string, expiresAt = NOW + 60_000): SessionRecord {
  return {
    container_id: containerId,
    created_at: NOW - 1000,
    expires_at: expiresAt,
    env: {},
    metadata: {},
  };
}

function container(id: string, running = true, session?: string): SandboxSummary {
  return { id, running, labels: session ? { ...worker, 'sandpool.session': session } : worker };
}

describe('planReadoption', () => {
  test('keeps recorded, running, unexpired sessions and removes everything else', () => {
    const records = new Map([
      ['sb_pooled', record('c1')],
      ['sb_ondemand', record('c2')],
      ['sb_expired', record('c3', NOW - 1)],
      ['sb_stopped', record('c4')],
      ['sb_vanished', record('c9')],
    ]);
    const plan = planReadoption(
      records,
      [
        container('c1'),
        container('c2', true, 'sb_ondemand'),
        container('c3'),
        container('c4', false),
        container('c5'), // an idle pooled container of the earlier run
      ],
      NOW,
    );
    assert.deepEqual(
      plan.adopt.map((a) => [a.sessionId, a.container.id]),
      [
        ['sb_pooled', 'c1'],
        ['sb_ondemand', 'c2'],
      ],
    );
    assert.deepEqual(
      plan.remove.map((c) => c.id),
      ['c3', 'c4', 'c5'],
    );
    assert.deepEqual(plan.forget.sort(), ['sb_expired', 'sb_stopped', 'sb_vanished']);
  });

  test('a container labelled for another session than its record is not trusted', () => {
    const plan = planReadoption(
      new Map([['sb_a', record('c1')]]),
      [container('c1', true, 'sb_b')],
      NOW,
    );
    assert.deepEqual(plan.adopt, []);
    assert.deepEqual(
      plan.remove.map((c) => c.id),
      ['c1'],
    );
    assert.deepEqual(plan.forget, ['sb_a']);
  });
});

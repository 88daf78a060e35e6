import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rankForNewSession, type WorkerView } from './worker-directory.js';

function worker(id: string, fields: Partial<WorkerView> = {}): WorkerView {
  return {
    worker_id: id,
    url: `http://127.0.0.1/${id}`,
    healthy: true,
    pool_size: 1,
    active_sessions: 0,
    max_sessions: 10,
    accepting: true,
    last_heartbeat: new Date(0).toISOString(),
    ...fields,
  };
}

describe('rankForNewSession', () => {
  test('most free warm containers first, then fewest active sessions', () => {
    const ranked = rankForNewSession([
      worker('busy', { pool_size: 3, active_sessions: 5 }),
      worker('idle', { pool_size: 3, active_sessions: 1 }),
      worker('cold', { pool_size: 0, active_sessions: 0 }),
    ]);
    assert.deepEqual(
      ranked.map((w) => w.worker_id),
      ['idle', 'busy', 'cold'],
    );
  });

  test('leaves out workers that are gone, refusing, or at their session limit', () => {
    const ranked = rankForNewSession([
      worker('gone', { healthy: false, accepting: false }),
      worker('refusing', { accepting: false }),
      worker('full', { active_sessions: 10 }),
      worker('ok'),
    ]);
    assert.deepEqual(
      ranked.map((w) => w.worker_id),
      ['ok'],
    );
  });

  test('ties are broken by the random source, so a burst does not pile onto one worker', () => {
    const values = [0.9, 0.1];
    const ranked = rankForNewSession([worker('x'), worker('y')], () => values.shift() ?? 0);
    assert.deepEqual(
      ranked.map((w) => w.worker_id),
      ['y', 'x'],
    );
  });
});

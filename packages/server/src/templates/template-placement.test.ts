import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { WorkerView } from '../coordinator/worker-directory.js';
import { rankForNewSession } from '../coordinator/worker-directory.js';
import { clusterTemplates, requestedTemplate, workersServing } from './template-placement.js';

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

const load = (name: string, pool_size: number, active_sessions = 0) => ({
  name,
  pool_size,
  active_sessions,
});

describe('workersServing', () => {
  const workers = [
    worker('both', { pool_size: 5, templates: [load('base', 4), load('code-interpreter', 1)] }),
    worker('ci', { pool_size: 3, templates: [load('code-interpreter', 3)] }),
    worker('old', { pool_size: 2 }), // a heartbeat from before templates: base only
  ];

  test('keeps the workers that serve the template, with that template’s pool size', () => {
    assert.deepEqual(
      workersServing(workers, 'code-interpreter').map((w) => [w.worker_id, w.pool_size]),
      [
        ['both', 1],
        ['ci', 3],
      ],
    );
    assert.deepEqual(
      workersServing(workers, 'base').map((w) => [w.worker_id, w.pool_size]),
      [
        ['both', 4],
        ['old', 2],
      ],
    );
    assert.deepEqual(workersServing(workers, 'nope'), []);
  });

  test('the ranking then prefers the most warm sandboxes of the template', () => {
    const ranked = rankForNewSession(workersServing(workers, 'code-interpreter'), () => 0);
    assert.deepEqual(
      ranked.map((w) => w.worker_id),
      ['ci', 'both'],
    );
  });
});

describe('clusterTemplates', () => {
  test('sums live workers per template and names them; dead workers are left out', () => {
    assert.deepEqual(
      clusterTemplates([
        worker('a', { templates: [load('base', 2, 1), load('code-interpreter', 1, 2)] }),
        worker('b', { templates: [load('base', 3, 4)] }),
        worker('old', { pool_size: 1, active_sessions: 1 }),
        worker('dead', { healthy: false, templates: [load('gpu', 9)] }),
      ]),
      [
        { name: 'base', pool_size: 6, active_sessions: 6, workers: ['a', 'b', 'old'] },
        { name: 'code-interpreter', pool_size: 1, active_sessions: 2, workers: ['a'] },
      ],
    );
  });

  test('sums the pool figures of the workers whose heartbeats carry them', () => {
    const figures = { pool_target: 2, pool_starting: 1, pool_hits: 5, pool_misses: 1 };
    assert.deepEqual(
      clusterTemplates([
        worker('a', { templates: [{ ...load('base', 1, 1), ...figures }] }),
        worker('b', { templates: [{ ...load('base', 2, 0), ...figures, pool_hits: 3 }] }),
        worker('old', { templates: [load('base', 1, 0)] }),
      ]),
      [
        {
          name: 'base',
          pool_size: 4,
          active_sessions: 1,
          workers: ['a', 'b', 'old'],
          pool_target: 4,
          pool_starting: 2,
          pool_hits: 8,
          pool_misses: 2,
        },
      ],
    );
  });
});

describe('requestedTemplate', () => {
  for (const [body, expected] of [
    ['', 'base'],
    ['{}', 'base'],
    ['{"template":"code-interpreter"}', 'code-interpreter'],
    ['{"template":42}', 'base'],
    ['[1]', 'base'],
    ['not json', 'base'],
    ['null', 'base'],
  ] as const) {
    test(`${JSON.stringify(body)} asks for ${expected}`, () => {
      assert.equal(requestedTemplate(Buffer.from(body)), expected);
    });
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PeriodicTask } from './periodic-task.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('a round that outlasts the interval is never overlapped by the next', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let rounds = 0;
  let concurrent = 0;
  let maxConcurrent = 0;
  const gates: ReturnType<typeof deferred>[] = [];
  const task = new PeriodicTask(async () => {
    rounds++;
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    const gate = deferred();
    gates.push(gate);
    await gate.promise;
    concurrent--;
  }, 100);
  task.start();
  t.mock.timers.tick(100);
  assert.equal(rounds, 1);
  // Ten intervals pass while the first round hangs: no second round starts.
  for (let i = 0; i < 10; i++) t.mock.timers.tick(100);
  assert.equal(rounds, 1);
  // runNow() during the round joins it.
  const joined = task.runNow();
  assert.equal(rounds, 1);
  gates[0]?.resolve();
  await joined;
  await Promise.resolve();
  // The next round is one interval after the first ended.
  t.mock.timers.tick(99);
  assert.equal(rounds, 1);
  t.mock.timers.tick(1);
  assert.equal(rounds, 2);
  assert.equal(maxConcurrent, 1);
  gates[1]?.resolve();
  await task.stop();
  t.mock.timers.tick(1000);
  assert.equal(rounds, 2);
});

test('a failing round is reported and the task keeps running', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const errors: unknown[] = [];
  let rounds = 0;
  const task = new PeriodicTask(
    () => {
      rounds++;
      return Promise.reject(new Error(`round ${rounds}`));
    },
    50,
    (error) => errors.push(error),
  );
  task.start();
  t.mock.timers.tick(50);
  await task.runNow(); // joins round 1
  await Promise.resolve();
  t.mock.timers.tick(50);
  await task.runNow();
  assert.equal(rounds, 2);
  assert.equal(errors.length, 2);
  await task.stop();
});

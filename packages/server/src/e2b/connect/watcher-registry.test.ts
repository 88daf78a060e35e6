import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type { WatchService, WatchStreamEvent } from '../../files/watch-service.js';
import { WatcherRegistry } from './watcher-registry.js';

/** The watch service's contract in memory: emits what the test says, records stops. */
function watchesInMemory() {
  const emitters: ((event: WatchStreamEvent) => void)[] = [];
  let stopped = 0;
  const watches: Pick<WatchService, 'watch'> = {
    watch: async (_sessionId, rawPath, _recursive, emit) => {
      const path = `/home/sandboxuser/${rawPath}`;
      void emit({ type: 'ready', path });
      emitters.push((event) => void emit(event));
      return { path, done: Promise.resolve(), stop: () => void stopped++ };
    },
  };
  return {
    watches,
    emit: (i: number, e: WatchStreamEvent) => emitters[i]?.(e),
    stops: () => stopped,
  };
}

function registry(watches: Pick<WatchService, 'watch'>, now: () => number) {
  return new WatcherRegistry({
    watches,
    log: pino({ level: 'silent' }),
    idleMs: 60_000,
    maxPerSession: 2,
    maxEventsPerWatcher: 3,
    now,
  });
}

test('events wait for the next poll, and a poll empties them', async () => {
  const fake = watchesInMemory();
  const watchers = registry(fake.watches, () => 0);
  const id = await watchers.create('s1', 'dir', false);
  fake.emit(0, { type: 'create', name: 'a.txt', is_dir: false });
  fake.emit(0, { type: 'overflow', name: '', is_dir: false });
  fake.emit(0, { type: 'write', name: 'a.txt', is_dir: false });
  assert.deepEqual(watchers.take('s1', id), [
    { type: 'create', name: 'a.txt', isDir: false },
    { type: 'write', name: 'a.txt', isDir: false },
  ]);
  assert.deepEqual(watchers.take('s1', id), []);
});

test('events past the limit are dropped, not kept', async () => {
  const fake = watchesInMemory();
  const watchers = registry(fake.watches, () => 0);
  const id = await watchers.create('s1', 'dir', false);
  for (let i = 0; i < 10; i++) fake.emit(0, { type: 'create', name: `f${i}`, is_dir: false });
  assert.equal(watchers.take('s1', id).length, 3);
});

test('another session cannot poll or remove a watcher; removal stops the watch', async () => {
  const fake = watchesInMemory();
  const watchers = registry(fake.watches, () => 0);
  const id = await watchers.create('s1', 'dir', false);
  const notFound = (e: unknown) => e instanceof SandpoolError && e.code === 'file_not_found';
  assert.throws(() => watchers.take('s2', id), notFound);
  assert.throws(() => watchers.remove('s2', id), notFound);
  watchers.remove('s1', id);
  assert.equal(fake.stops(), 1);
  assert.throws(() => watchers.take('s1', id), notFound);
});

test('a session has a bounded number of watchers', async () => {
  const fake = watchesInMemory();
  const watchers = registry(fake.watches, () => 0);
  await watchers.create('s1', 'a', false);
  await watchers.create('s1', 'b', false);
  await assert.rejects(
    watchers.create('s1', 'c', false),
    (e: unknown) => e instanceof SandpoolError && e.code === 'invalid_request',
  );
  await watchers.create('s2', 'c', false);
});

test('sweep removes watchers nobody polled within idleMs', async () => {
  const fake = watchesInMemory();
  let now = 0;
  const watchers = registry(fake.watches, () => now);
  const idle = await watchers.create('s1', 'a', false);
  const polled = await watchers.create('s1', 'b', false);
  now = 50_000;
  watchers.take('s1', polled);
  now = 70_000;
  assert.equal(watchers.sweep(), 1);
  assert.equal(watchers.size, 1);
  assert.throws(() => watchers.take('s1', idle));
  watchers.close();
  assert.equal(watchers.size, 0);
  assert.equal(fake.stops(), 2);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError } from '@connectrpc/connect';
import { toEntryInfo, toFilesystemEvent } from './filesystem-rpc.js';
import { EventType, FileType } from './gen/filesystem/filesystem_pb.js';
import { toProcessEvent } from './process-rpc.js';

test('process events: start, data by stream (pty bytes for a terminal), end with status', () => {
  const start = toProcessEvent(
    { type: 'start', pid: 7, tag: null, pty: false, running: true },
    false,
  );
  assert.ok(!(start instanceof ConnectError));
  assert.equal(start?.event.case === 'start' && start.event.value.pid, 7);

  const out = toProcessEvent({ type: 'stderr', data: 'é\n' }, false);
  assert.ok(out && !(out instanceof ConnectError) && out.event.case === 'data');
  assert.equal(out.event.value.output.case, 'stderr');
  assert.deepEqual(Buffer.from(out.event.value.output.value ?? []), Buffer.from('é\n'));

  const pty = toProcessEvent({ type: 'stdout', data: 'x' }, true);
  assert.ok(pty && !(pty instanceof ConnectError) && pty.event.case === 'data');
  assert.equal(pty.event.value.output.case, 'pty');

  const ok = toProcessEvent({ type: 'exit', exit_code: 0, timed_out: false, ended_at: '' }, false);
  assert.ok(ok && !(ok instanceof ConnectError) && ok.event.case === 'end');
  assert.equal(ok.event.value.exitCode, 0);
  assert.equal(ok.event.value.exited, true);
  assert.equal(ok.event.value.error, undefined);

  const bad = toProcessEvent({ type: 'exit', exit_code: 3, timed_out: false, ended_at: '' }, false);
  assert.ok(bad && !(bad instanceof ConnectError) && bad.event.case === 'end');
  assert.equal(bad.event.value.error, 'exit status 3');

  assert.equal(toProcessEvent({ type: 'truncated', dropped_bytes: 10 }, false), undefined);
  const lost = toProcessEvent(
    { type: 'error', error: { code: 'session_lost', message: 'gone' } },
    false,
  );
  assert.ok(lost instanceof ConnectError && lost.code === Code.Unavailable);
});

test('entry info carries type, size, mode, owner, time and symlink target', () => {
  const entry = toEntryInfo({
    name: 'l',
    path: '/tmp/l',
    type: 'symlink',
    size: 3,
    mode: 0o777,
    permissions: 'lrwxrwxrwx',
    owner: 'sandboxuser',
    group: 'sandboxuser',
    mtimeMs: 1_700_000_000_123,
    symlinkTarget: 'a/b',
  });
  assert.equal(entry.type, FileType.SYMLINK);
  assert.equal(entry.size, 3n);
  assert.equal(entry.symlinkTarget, 'a/b');
  assert.equal(entry.modifiedTime?.seconds, 1_700_000_000n);
  assert.equal(entry.modifiedTime?.nanos, 123_000_000);
  const other = toEntryInfo({ ...entryBase(), type: 'other' });
  assert.equal(
    other.type,
    FileType.UNSPECIFIED,
    'the SDK skips what is neither file, dir nor link',
  );
});

test('watch events map one to one; overflow has no envd event', () => {
  assert.equal(toFilesystemEvent({ type: 'rename', name: 'a' })?.type, EventType.RENAME);
  assert.equal(toFilesystemEvent({ type: 'chmod', name: 'a' })?.type, EventType.CHMOD);
  assert.equal(toFilesystemEvent({ type: 'overflow', name: '' }), undefined);
});

function entryBase() {
  return {
    name: 'f',
    path: '/tmp/f',
    size: 0,
    mode: 0o644,
    permissions: '-rw-r--r--',
    owner: 'sandboxuser',
    group: 'sandboxuser',
    mtimeMs: 0,
  };
}

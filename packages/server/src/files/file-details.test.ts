import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { ExecRequest, Sandbox } from '../runtime/sandbox-runtime.js';
import { FileDetailsReader } from './file-details.js';

/** A sandbox whose file tool prints `stdout` and exits with `exitCode` (hostile on purpose). */
function sandboxPrinting(stdout: string | Buffer, exitCode = 0, seen: ExecRequest[] = []): Sandbox {
  const partial: Pick<Sandbox, 'exec'> = {
    exec: async (request, sinks) => {
      seen.push(request);
      await sinks.onStdout(Buffer.from(stdout));
      return { exitCode, timedOut: false, durationMs: 1 };
    },
  };
  return partial as Sandbox;
}

const good = {
  name: 'f.txt',
  path: '/tmp/f.txt',
  type: 'file',
  size: 5,
  mode: 0o644,
  permissions: '-rw-r--r--',
  owner: 'sandboxuser',
  group: 'sandboxuser',
  mtimeMs: 1_700_000_000_000,
};

const code = (expected: string) => (e: unknown) =>
  e instanceof SandpoolError && e.code === expected;

test('paths go to python3 as argv, never through a shell', async () => {
  const seen: ExecRequest[] = [];
  const reader = new FileDetailsReader(sandboxPrinting(JSON.stringify(good), 0, seen));
  assert.deepEqual(await reader.stat('/tmp/f.txt; rm -rf ~'), good);
  assert.equal(seen[0]?.argv[0], 'python3');
  assert.equal(seen[0]?.argv[1], '-c');
  assert.deepEqual(seen[0]?.argv.slice(3), ['stat', '/tmp/f.txt; rm -rf ~']);
});

test('the tool’s errno failures become the file errors every route uses', async () => {
  const missing = JSON.stringify({ error: 'ENOENT', message: 'No such file or directory' });
  assert.equal(await new FileDetailsReader(sandboxPrinting(missing, 3)).stat('/tmp/x'), undefined);
  await assert.rejects(
    new FileDetailsReader(sandboxPrinting(missing, 3)).move('/tmp/x', '/tmp/y'),
    code('file_not_found'),
  );
  const notDir = JSON.stringify({ error: 'not_dir', message: 'x' });
  await assert.rejects(
    new FileDetailsReader(sandboxPrinting(notDir, 3)).tree('/tmp/f', 1),
    code('invalid_path'),
  );
});

test('malformed or out-of-schema answers are refused, not passed on', async () => {
  for (const stdout of ['not json', JSON.stringify({ ...good, mode: 0o70000 }), '{}']) {
    await assert.rejects(
      new FileDetailsReader(sandboxPrinting(stdout)).stat('/tmp/f'),
      code('internal_error'),
    );
  }
  await assert.rejects(
    new FileDetailsReader(sandboxPrinting('x', 1)).stat('/tmp/f'),
    code('internal_error'),
  );
});

test('an answer past its bound is refused (payload_too_large), not buffered', async () => {
  const flood = Buffer.alloc(17 * 1024, 'a');
  await assert.rejects(
    new FileDetailsReader(sandboxPrinting(flood)).stat('/tmp/f'),
    code('payload_too_large'),
  );
  const twoLines = `${JSON.stringify(good)}\n${JSON.stringify(good)}\n`;
  await assert.rejects(
    new FileDetailsReader(sandboxPrinting(twoLines)).stat('/tmp/f'),
    code('internal_error'),
  );
});

test('mkdir tells created from already there', async () => {
  const existing = JSON.stringify({ ...good, type: 'directory', created: false });
  const result = await new FileDetailsReader(sandboxPrinting(existing)).makeDir('/tmp/d');
  assert.equal(result.created, false);
  assert.equal(result.entry.type, 'directory');
  await assert.rejects(
    new FileDetailsReader(sandboxPrinting(JSON.stringify(good))).makeDir('/tmp/d'),
    code('internal_error'),
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConnectionError,
  FileNotFoundError,
  InvalidPathError,
  InvalidRequestError,
  PayloadTooLargeError,
  SessionLostError,
  SessionNotFoundError,
} from '@sandpool/client';
import { SandboxError } from 'deepagents';
import {
  fileOperationErrorOf,
  sandboxFailure,
  SandpoolSandboxError,
} from './sandpool-sandbox-error.js';

// The messages are the server's own (files/file-service.ts, runtime/agent/agent-errors.ts,
// files/sandbox-path.ts), as a worker and a coordinator send them.

test('file errors map to the codes Deep Agents knows', () => {
  const cases: [Error, string | undefined][] = [
    [new FileNotFoundError('No file at /home/sandboxuser/a.txt in the sandbox.'), 'file_not_found'],
    [
      new InvalidPathError(
        '/home/sandboxuser/d is a directory; list it with GET /files/list?path=...',
      ),
      'is_directory',
    ],
    [new InvalidPathError('/home/sandboxuser/d is a directory; name a file.'), 'is_directory'],
    [
      new InvalidPathError(
        'The sandbox user may not access /home/sandboxuser/ro/x: Permission denied',
      ),
      'permission_denied',
    ],
    [
      new InvalidPathError(
        "/etc/passwd resolves to /etc/passwd, outside the sandbox's writable roots (/home/sandboxuser, /tmp).",
      ),
      'invalid_path',
    ],
    [
      new InvalidPathError('A parent of /home/sandboxuser/f/x is a file, not a directory.'),
      'invalid_path',
    ],
    [new InvalidPathError('The path contains a NUL byte.'), 'invalid_path'],
    [
      new PayloadTooLargeError('The request body is larger than this server accepts.'),
      'permission_denied',
    ],
    // Not about the file: the caller throws these.
    [new SessionNotFoundError('Session sb_x not found.'), undefined],
    [new ConnectionError('http://127.0.0.1:9', 'ECONNREFUSED'), undefined],
    [new InvalidRequestError('bad'), undefined],
    [new Error('boom'), undefined],
  ];
  for (const [error, code] of cases) assert.equal(fileOperationErrorOf(error), code, error.message);
});

test('failures of the sandbox become SandpoolSandboxErrors with the cause kept', () => {
  const gone = new SessionNotFoundError('Session sb_x not found; create a new one.');
  const wrapped = sandboxFailure(gone, 'COMMAND_FAILED');
  assert.ok(wrapped instanceof SandpoolSandboxError);
  assert.ok(wrapped instanceof SandboxError, 'a Deep Agents SandboxError');
  assert.ok(SandboxError.isInstance(wrapped));
  assert.deepEqual(
    [wrapped.code, wrapped.message, wrapped.name],
    ['SANDBOX_NOT_FOUND', gone.message, 'SandpoolSandboxError'],
  );
  assert.equal(wrapped.cause, gone);

  assert.equal(sandboxFailure(new SessionLostError('lost'), 'COMMAND_FAILED').code, 'SANDBOX_LOST');
  const down = sandboxFailure(new ConnectionError('http://h', 'ECONNRESET'), 'COMMAND_FAILED');
  assert.equal(down.code, 'COMMAND_FAILED');
  assert.match(down.message, /cannot reach sandpool at http:\/\/h/);
  assert.equal(sandboxFailure('text', 'FILE_OPERATION_FAILED').message, 'text');
  assert.equal(sandboxFailure(wrapped, 'COMMAND_FAILED'), wrapped, 'not wrapped twice');
});

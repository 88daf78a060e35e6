import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError } from '@connectrpc/connect';
import { ERROR_STATUS, SandpoolError, type ErrorCode } from '../../errors/sandpool-error.js';
import { asConnect, connectCodeOf, toConnectError } from './connect-errors.js';

test('the codes the e2b SDK maps to its exceptions', () => {
  assert.equal(connectCodeOf('file_not_found'), Code.NotFound);
  assert.equal(connectCodeOf('process_not_found'), Code.NotFound);
  assert.equal(connectCodeOf('invalid_path'), Code.InvalidArgument);
  assert.equal(connectCodeOf('invalid_request'), Code.InvalidArgument);
  assert.equal(connectCodeOf('session_lost'), Code.Unavailable);
  assert.equal(connectCodeOf('payload_too_large'), Code.ResourceExhausted);
});

test('every sandpool error code has a Connect code, never Unknown', () => {
  for (const code of Object.keys(ERROR_STATUS) as ErrorCode[]) {
    const mapped = connectCodeOf(code);
    assert.ok(mapped !== undefined && mapped !== Code.Unknown, code);
  }
});

test('a SandpoolError keeps its code and message in the Connect message', () => {
  const error = toConnectError(new SandpoolError('file_not_found', 'No file at /tmp/x.'));
  assert.equal(error.code, Code.NotFound);
  assert.equal(error.rawMessage, 'file_not_found: No file at /tmp/x.');
});

test('a ConnectError passes through; anything else is internal with no detail leaked', () => {
  const own = new ConnectError('x', Code.AlreadyExists);
  assert.equal(toConnectError(own), own);
  const bug = toConnectError(new TypeError('secret detail'));
  assert.equal(bug.code, Code.Internal);
  assert.doesNotMatch(bug.rawMessage, /secret detail/);
});

test('asConnect converts what an operation throws', async () => {
  await assert.rejects(
    asConnect(() => {
      throw new SandpoolError('invalid_path', 'outside');
    }),
    (e: unknown) => e instanceof ConnectError && e.code === Code.InvalidArgument,
  );
  assert.equal(await asConnect(async () => 7), 7);
});

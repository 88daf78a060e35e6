import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError } from '@connectrpc/connect';
import { checkEnvdUser } from './envd-user.js';

const basic = (name: string) => `Basic ${Buffer.from(`${name}:`).toString('base64')}`;

test('no user, "user" and "sandboxuser" run as the sandbox user', () => {
  for (const header of [undefined, null, '', basic('user'), basic('sandboxuser'), basic('')]) {
    assert.doesNotThrow(() => checkEnvdUser(header));
  }
});

test('root is refused clearly, as InvalidArgument', () => {
  assert.throws(
    () => checkEnvdUser(basic('root')),
    (e: unknown) =>
      e instanceof ConnectError &&
      e.code === Code.InvalidArgument &&
      /cannot act as "root"/.test(e.rawMessage) &&
      /user: 'user'/.test(e.rawMessage),
  );
});

test('another scheme is not a user choice', () => {
  assert.doesNotThrow(() => checkEnvdUser('Bearer abc'));
});

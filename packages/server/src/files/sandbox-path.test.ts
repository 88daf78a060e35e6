import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveSandboxPath } from './sandbox-path.js';
import { SandpoolError } from '../errors/sandpool-error.js';

test('relative paths land under the home', () => {
  assert.equal(resolveSandboxPath('a/b.txt'), '/home/sandboxuser/a/b.txt');
  assert.equal(resolveSandboxPath('./x/../y'), '/home/sandboxuser/y');
  assert.equal(resolveSandboxPath('.'), '/home/sandboxuser');
});

test('absolute paths inside the writable roots are kept', () => {
  assert.equal(resolveSandboxPath('/tmp/data/'), '/tmp/data');
  assert.equal(resolveSandboxPath('/home/sandboxuser//f'), '/home/sandboxuser/f');
});

for (const bad of [
  '',
  '../../etc/passwd',
  '/etc/passwd',
  'a\0b',
  '/tmp/../etc/shadow',
  '/home/sandboxuserx/f',
  '/',
]) {
  test(`rejects ${JSON.stringify(bad)} with invalid_path`, () => {
    assert.throws(
      () => resolveSandboxPath(bad),
      (e: unknown) => e instanceof SandpoolError && e.code === 'invalid_path' && e.status === 400,
    );
  });
}

test('a root itself can be refused', () => {
  assert.throws(() => resolveSandboxPath('/tmp', { allowRoot: false }), /root of the sandbox/);
  assert.equal(resolveSandboxPath('/tmp/x', { allowRoot: false }), '/tmp/x');
});

test('E2B’s home /home/user is the sandbox’s home; lookalikes are not', () => {
  assert.equal(resolveSandboxPath('/home/user'), '/home/sandboxuser');
  assert.equal(resolveSandboxPath('/home/user/'), '/home/sandboxuser');
  assert.equal(resolveSandboxPath('/home/user/a/../b.txt'), '/home/sandboxuser/b.txt');
  assert.throws(() => resolveSandboxPath('/home/username/x'), /outside the sandbox/);
  assert.throws(() => resolveSandboxPath('/home/user/../../etc/passwd'), /outside the sandbox/);
});

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type Docker from 'dockerode';
import { SANDBOX_HOSTS, SandboxHostsFile } from './sandbox-hosts-file.js';

const local = { modem: { socketPath: '/var/run/docker.sock' } } as unknown as Docker;
const remote = { modem: { host: 'engine.example', port: 2376 } } as unknown as Docker;

test('the hosts file is written once, rewritten when removed or changed, and names the sandbox', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hosts-file-'));
  try {
    const file = new SandboxHostsFile(local, path.join(dir, 'nested'));
    const written = file.current();
    assert.equal(written, path.join(dir, 'nested', 'hosts'));
    assert.equal(readFileSync(written, 'utf8'), SANDBOX_HOSTS);
    assert.match(SANDBOX_HOSTS, /^127\.0\.0\.1\tlocalhost$/m);
    assert.match(SANDBOX_HOSTS, /^127\.0\.1\.1\tsandbox$/m);
    writeFileSync(written, '10.0.0.1 localhost\n');
    assert.equal(readFileSync(file.current()!, 'utf8'), SANDBOX_HOSTS);
    rmSync(written);
    assert.equal(readFileSync(file.current()!, 'utf8'), SANDBOX_HOSTS);
    file.disable();
    assert.equal(file.current(), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an engine reached over TCP cannot see our files: no hosts file', () => {
  assert.equal(new SandboxHostsFile(remote, tmpdir()).current(), undefined);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateHost, parseVersion, runcHasFix } from './host-checks.js';
import type { HostFacts } from './host-facts.js';

test('parses upstream and Debian runc versions', () => {
  assert.deepEqual(parseVersion('1.1.5+ds1-1+deb12u1'), { numbers: [1, 1, 5], preRelease: false });
  assert.deepEqual(parseVersion('v1.0.0-rc6'), { numbers: [1, 0, 0], preRelease: true });
  assert.deepEqual(parseVersion('weird'), { numbers: [], preRelease: false });
});

test('a fix counts from its own line, from newer lines, or from a changelog naming the CVE', () => {
  assert.equal(runcHasFix('1.1.12', ['1.1.12'], 'CVE-2024-21626', undefined), 'fixed');
  assert.equal(runcHasFix('1.1.11', ['1.1.12'], 'CVE-2024-21626', undefined), 'missing');
  assert.equal(runcHasFix('1.2.0', ['1.1.12'], 'CVE-2024-21626', undefined), 'fixed');
  assert.equal(
    runcHasFix('1.1.5+ds1-1+deb12u1', ['1.1.12'], 'CVE-2024-21626', '* CVE-2024-21626: leaked fds'),
    'patched',
  );
  assert.equal(
    runcHasFix('1.3.2', ['1.2.8', '1.3.3', '1.4.0'], 'CVE-2025-31133', undefined),
    'missing',
  );
  assert.equal(
    runcHasFix('1.3.3', ['1.2.8', '1.3.3', '1.4.0'], 'CVE-2025-31133', undefined),
    'fixed',
  );
  assert.equal(
    runcHasFix('1.1.15', ['1.2.8', '1.3.3', '1.4.0'], 'CVE-2025-31133', undefined),
    'missing',
  );
  assert.equal(runcHasFix('1.0.0-rc6', ['1.0.0'], 'CVE-2019-5736', undefined), 'missing');
  assert.equal(runcHasFix('?', ['1.0.0'], 'CVE-2019-5736', undefined), 'unknown');
});

test('the verdict names what is missing and what to do', () => {
  const facts: HostFacts = {
    engineVersion: '20.10.24',
    kernelVersion: '6.1',
    operatingSystem: 'Debian',
    cgroupVersion: '1',
    cgroupDriver: 'cgroupfs',
    runcVersion: '1.1.5+ds1-1+deb12u1',
    runtimes: ['runc'],
    defaultRuntime: 'runc',
    seccomp: true,
    apparmor: false,
    userNamespaceRemap: false,
    rootless: false,
    limits: { memory: true, swap: true, pids: true, cpu: true },
    runcChangelog: 'CVE-2024-21626',
  };
  const results = evaluateHost(facts);
  const find = (needle: string) => results.find((r) => r.detail.includes(needle));
  assert.equal(find('CVE-2024-21626')?.level, 'ok');
  assert.equal(find('CVE-2025-31133')?.level, 'fail');
  assert.match(find('CVE-2025-31133')?.detail ?? '', /upgrade runc/);
  assert.equal(results.find((r) => r.name === 'user namespaces')?.level, 'warn');
  assert.equal(results.find((r) => r.name === 'cgroup limits')?.level, 'ok');
});

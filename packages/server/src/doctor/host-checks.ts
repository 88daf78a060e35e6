import type { HostFacts } from './host-facts.js';

export type CheckLevel = 'ok' | 'warn' | 'fail' | 'info';

export interface CheckResult {
  level: CheckLevel;
  name: string;
  detail: string;
}

/** runc container-escape fixes: the first upstream release of each line that carries the fix. */
export const RUNC_ESCAPES: readonly { cve: string; summary: string; fixedIn: string[] }[] = [
  {
    cve: 'CVE-2019-5736',
    summary: 'overwrite of the host runc binary via /proc/self/exe',
    fixedIn: ['1.0.0'],
  },
  { cve: 'CVE-2021-30465', summary: 'symlink race in mount handling', fixedIn: ['1.0.0'] },
  {
    cve: 'CVE-2024-21626',
    summary: 'leaked file descriptors let a container reach the host filesystem',
    fixedIn: ['1.1.12'],
  },
  {
    cve: 'CVE-2025-31133',
    summary: 'masked-path (/dev/null) races let a container write host /proc files',
    fixedIn: ['1.2.8', '1.3.3', '1.4.0'],
  },
  {
    cve: 'CVE-2025-52565',
    summary: '/dev/console bind-mount races let a container write host /proc files',
    fixedIn: ['1.2.8', '1.3.3', '1.4.0'],
  },
  {
    cve: 'CVE-2025-52881',
    summary: 'racing shared mounts redirect writes and bypass LSM labels',
    fixedIn: ['1.2.8', '1.3.3', '1.4.0'],
  },
];

/** `1.1.5+ds1-1+deb12u1` → [1, 1, 5]; pre-releases such as `1.0.0-rc6` count as before the release. */
export function parseVersion(version: string): { numbers: number[]; preRelease: boolean } {
  const match = /^v?(\d+)\.(\d+)\.(\d+)(-rc[\d.]*)?/.exec(version.trim());
  if (!match) return { numbers: [], preRelease: false };
  return {
    numbers: [Number(match[1]), Number(match[2]), Number(match[3])],
    preRelease: match[4] !== undefined,
  };
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Whether `version` carries the fix: the fixed release of its own line or later; a line newer than
 * every fixed release; or a distribution patch that names the CVE in its changelog.
 */
export function runcHasFix(
  version: string,
  fixedIn: string[],
  cve: string,
  changelog: string | undefined,
): 'fixed' | 'patched' | 'missing' | 'unknown' {
  if (changelog?.includes(cve)) return 'patched';
  const { numbers, preRelease } = parseVersion(version);
  if (numbers.length === 0) return 'unknown';
  const fixes = fixedIn.map((f) => parseVersion(f).numbers);
  const sameLine = fixes.find((f) => f[0] === numbers[0] && f[1] === numbers[1]);
  if (sameLine) {
    const cmp = compare(numbers, sameLine);
    return cmp > 0 || (cmp === 0 && !preRelease) ? 'fixed' : 'missing';
  }
  return fixes.every((f) => compare(numbers, f) > 0) ? 'fixed' : 'missing';
}

/** Turns facts into a verdict a person can act on, one line per check. */
export function evaluateHost(facts: HostFacts): CheckResult[] {
  const results: CheckResult[] = [
    {
      level: 'info',
      name: 'engine',
      detail: `Docker ${facts.engineVersion} on ${facts.operatingSystem}, kernel ${facts.kernelVersion}`,
    },
    {
      level:
        facts.limits.memory && facts.limits.swap && facts.limits.pids && facts.limits.cpu
          ? 'ok'
          : 'fail',
      name: 'cgroup limits',
      detail: `cgroup v${facts.cgroupVersion} (${facts.cgroupDriver}); memory ${yes(facts.limits.memory)}, swap ${yes(facts.limits.swap)}, pids ${yes(facts.limits.pids)}, cpu quota ${yes(facts.limits.cpu)}`,
    },
    {
      level: facts.seccomp ? 'ok' : 'fail',
      name: 'seccomp',
      detail: facts.seccomp
        ? 'the default profile applies to every sandbox'
        : 'the engine has no seccomp support: syscalls are not filtered',
    },
    {
      level: facts.userNamespaceRemap || facts.rootless ? 'ok' : 'warn',
      name: 'user namespaces',
      detail: facts.rootless
        ? 'rootless engine: container root is not host root'
        : facts.userNamespaceRemap
          ? 'userns-remap is on: container uids map to unprivileged host uids'
          : 'userns-remap is off: sandboxes run as uid 1000, which is uid 1000 on the host too (set "userns-remap" in daemon.json for one more layer)',
    },
    {
      level: facts.runtimes.includes('runsc') ? 'ok' : 'info',
      name: 'gVisor',
      detail: facts.runtimes.includes('runsc')
        ? 'runsc is registered: start workers with --runtime runsc to run sandboxes under gVisor'
        : 'runsc is not registered with the engine (optional: apt-get install runsc and add it to daemon.json "runtimes")',
    },
  ];
  for (const escape of RUNC_ESCAPES) {
    const state = runcHasFix(facts.runcVersion, escape.fixedIn, escape.cve, facts.runcChangelog);
    const detail = `${escape.cve} (${escape.summary}): runc ${facts.runcVersion}`;
    switch (state) {
      case 'fixed':
        results.push({ level: 'ok', name: 'runc', detail: `${detail} is a fixed release` });
        break;
      case 'patched':
        results.push({
          level: 'ok',
          name: 'runc',
          detail: `${detail} carries the distribution's patch`,
        });
        break;
      case 'missing':
        results.push({
          level: 'fail',
          name: 'runc',
          detail: `${detail} lacks the fix; upgrade runc (fixed in ${escape.fixedIn.join(', ')})`,
        });
        break;
      case 'unknown':
        results.push({
          level: 'warn',
          name: 'runc',
          detail: `${detail}: version not understood; check it by hand`,
        });
        break;
    }
  }
  return results;
}

function yes(flag: boolean): string {
  return flag ? 'yes' : 'no';
}

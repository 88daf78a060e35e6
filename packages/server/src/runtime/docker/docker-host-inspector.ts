import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import Docker from 'dockerode';
import type { HostFacts } from '../../doctor/host-facts.js';
import { translateDockerError } from './docker-errors.js';

/** Where Debian keeps runc's changelog, which names the CVEs its patches fix. */
const DEBIAN_RUNC_CHANGELOG = '/usr/share/doc/runc/changelog.Debian.gz';

interface DockerInfo {
  ServerVersion?: string;
  KernelVersion?: string;
  OperatingSystem?: string;
  CgroupVersion?: string;
  CgroupDriver?: string;
  SecurityOptions?: string[];
  Runtimes?: Record<string, unknown>;
  DefaultRuntime?: string;
  RuncCommit?: { ID?: string };
  MemoryLimit?: boolean;
  SwapLimit?: boolean;
  PidsLimit?: boolean;
  CpuCfsQuota?: boolean;
}

/** Reads what the Docker engine says about the host, for `sandpool doctor`. */
export class DockerHostInspector {
  constructor(private readonly docker: Docker = new Docker()) {}

  async inspect(): Promise<HostFacts> {
    let info: DockerInfo;
    try {
      info = (await this.docker.info()) as DockerInfo;
    } catch (error) {
      throw translateDockerError(error, 'reading the engine information');
    }
    const security = info.SecurityOptions ?? [];
    return {
      engineVersion: info.ServerVersion ?? 'unknown',
      kernelVersion: info.KernelVersion ?? 'unknown',
      operatingSystem: info.OperatingSystem ?? 'unknown',
      cgroupVersion: info.CgroupVersion ?? 'unknown',
      cgroupDriver: info.CgroupDriver ?? 'unknown',
      runcVersion: info.RuncCommit?.ID ?? 'unknown',
      runtimes: Object.keys(info.Runtimes ?? {}),
      defaultRuntime: info.DefaultRuntime ?? 'runc',
      seccomp: security.some((o) => o.includes('name=seccomp')),
      apparmor: security.some((o) => o.includes('name=apparmor')),
      userNamespaceRemap: security.some((o) => o.includes('name=userns')),
      rootless: security.some((o) => o.includes('name=rootless')),
      limits: {
        memory: info.MemoryLimit ?? false,
        swap: info.SwapLimit ?? false,
        pids: info.PidsLimit ?? false,
        cpu: info.CpuCfsQuota ?? false,
      },
      runcChangelog: await readFile(DEBIAN_RUNC_CHANGELOG).then(
        (gz) => gunzipSync(gz).toString('utf8'),
        () => undefined,
      ),
    };
  }
}

/** What `sandpool doctor` learns about the host running the sandboxes. */
export interface HostFacts {
  engineVersion: string;
  kernelVersion: string;
  operatingSystem: string;
  cgroupVersion: string;
  cgroupDriver: string;
  /** As the engine reports it, e.g. `1.1.12` or Debian's `1.1.5+ds1-1+deb12u1`. */
  runcVersion: string;
  runtimes: string[];
  defaultRuntime: string;
  seccomp: boolean;
  apparmor: boolean;
  userNamespaceRemap: boolean;
  rootless: boolean;
  limits: { memory: boolean; swap: boolean; pids: boolean; cpu: boolean };
  /** Debian's changelog of the runc package, when installed from Debian: it names patched CVEs. */
  runcChangelog: string | undefined;
}

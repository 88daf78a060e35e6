import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { SANDBOX_HOSTNAME } from '../sandbox-layout.js';

/** What every sandbox without a network finds in /etc/hosts. */
export const SANDBOX_HOSTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  `127.0.1.1\t${SANDBOX_HOSTNAME}`,
  '',
].join('\n');

/**
 * The /etc/hosts of sandboxes without a network, as a file on the engine's host, so a container
 * can have `NetworkDisabled` and still resolve `localhost`: with the flag the engine sets up no
 * network sandbox for the container (about half its start time) and mounts an empty hosts file
 * unless one is mounted there already. Only usable when the engine sees this process's files: it
 * is tried with an engine on a local socket, and the runtime falls back to the engine's own hosts
 * file when the engine refuses the mount (the source does not exist on its side, as for a worker
 * in a container of its own).
 */
export class SandboxHostsFile {
  readonly path: string;
  private usable: boolean;

  constructor(
    docker: Docker,
    dir = path.join(tmpdir(), `sandpool-hosts-${process.getuid?.() ?? 0}`),
  ) {
    this.path = path.join(dir, 'hosts');
    this.usable = engineSharesOurFiles(docker);
  }

  /** The file to bind over /etc/hosts, rewritten if something removed or changed it; or none. */
  current(): string | undefined {
    if (!this.usable) return undefined;
    try {
      if (!existsSync(this.path) || readFileSync(this.path, 'utf8') !== SANDBOX_HOSTS) {
        mkdirSync(path.dirname(this.path), { recursive: true, mode: 0o755 });
        const partial = `${this.path}.${process.pid}`;
        writeFileSync(partial, SANDBOX_HOSTS, { mode: 0o644 });
        renameSync(partial, this.path);
      }
      return this.path;
    } catch {
      this.usable = false;
      return undefined;
    }
  }

  /** The engine could not mount it (another filesystem after all): stop trying. */
  disable(): void {
    this.usable = false;
  }
}

function engineSharesOurFiles(docker: Docker): boolean {
  const modem = (docker as unknown as { modem?: { socketPath?: unknown } }).modem;
  // docker-modem keeps a function that finds the default socket when none was named.
  return modem?.socketPath !== undefined;
}

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BRIDGE_PREFIX } from './session-network.js';

const run = promisify(execFile);
const CHAIN = 'SANDPOOL-EGRESS';
const BRIDGES = `${BRIDGE_PREFIX}+`;

/**
 * The host firewall rules that make a session network a dead end except for the proxy:
 * - from a session bridge to the host, only TCP to the proxy port is accepted; other TCP gets a
 *   reset and everything else (UDP included) an ICMP "port unreachable", so it fails at once;
 * - nothing is forwarded from or into a session bridge (ICMP "network unreachable"), whatever
 *   Docker's own rules say, so an address outside fails at once instead of hanging.
 * Idempotent (`-C` before each insert), shared by every worker on the host, matched by bridge name.
 */
export class EgressFirewall {
  constructor(
    private readonly iptables: string = 'iptables',
    private readonly exec: (file: string, args: string[]) => Promise<unknown> = (file, args) =>
      run(file, args),
  ) {}

  /** Installs the rules for a proxy on `proxyPort`; throws with what to do when it cannot. */
  async install(proxyPort: number): Promise<void> {
    try {
      await this.exec(this.iptables, ['-w', '-N', CHAIN]).catch(() => undefined); // exists
      await this.ensure([CHAIN, '-p', 'tcp', '--dport', String(proxyPort), '-j', 'ACCEPT'], 1);
      await this.ensure([CHAIN, '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset']);
      await this.ensure([CHAIN, '-j', 'REJECT', '--reject-with', 'icmp-port-unreachable']);
      await this.ensure(['INPUT', '-i', BRIDGES, '-j', CHAIN], 1);
      const forward = (await this.has(['DOCKER-USER', '-j', 'RETURN'])) ? 'DOCKER-USER' : 'FORWARD';
      const unreachable = ['-j', 'REJECT', '--reject-with', 'icmp-net-unreachable'];
      await this.ensure([forward, '-i', BRIDGES, ...unreachable], 1);
      await this.ensure([forward, '-o', BRIDGES, ...unreachable], 1);
    } catch (error) {
      throw new Error(
        `could not install the egress firewall rules with ${this.iptables} (${(error as Error).message.split('\n')[0]}); the worker needs root (or CAP_NET_ADMIN) and iptables for sessions with network`,
        { cause: error },
      );
    }
  }

  private async has(rule: string[]): Promise<boolean> {
    try {
      await this.exec(this.iptables, ['-w', '-C', ...rule]);
      return true;
    } catch {
      return false;
    }
  }

  /** Adds the rule unless present: at `position` when given, else at the end. */
  private async ensure(rule: string[], position?: number): Promise<void> {
    if (await this.has(rule)) return;
    const [chain = '', ...rest] = rule;
    await this.exec(
      this.iptables,
      position === undefined
        ? ['-w', '-A', chain, ...rest]
        : ['-w', '-I', chain, String(position), ...rest],
    );
  }
}

import Docker from 'dockerode';
import { randomBytes, randomInt } from 'node:crypto';
import { SandpoolError } from '../../errors/sandpool-error.js';
import {
  BRIDGE_PREFIX,
  type SessionNetwork,
  type SessionNetworks,
} from '../../network/session-network.js';
import { translateDockerError } from './docker-errors.js';

const SUBNET_BITS = 29; // network, gateway (proxy), sandbox, spare, broadcast.

function ipv4ToInt(address: string): number {
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/**
 * Session networks as Docker `internal` bridges, one per session, each a /29 taken at random
 * from the worker's pool (`--egress-subnets`); a pool clash with another network is retried.
 * The bridge is named `spe-…` so the worker's firewall rules find it.
 */
export class DockerSessionNetworks implements SessionNetworks {
  private readonly base: number;
  private readonly blocks: number;

  constructor(
    private readonly docker: Docker,
    /** An IPv4 CIDR of /24 or larger. */
    pool: string,
  ) {
    const [address = '', prefixText = ''] = pool.split('/');
    const prefix = Number(prefixText);
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(address) || !(prefix >= 8 && prefix <= 24)) {
      throw new Error(`--egress-subnets "${pool}" must be an IPv4 CIDR from /8 to /24`);
    }
    this.base = ipv4ToInt(address) - (ipv4ToInt(address) % 2 ** (32 - prefix));
    this.blocks = 2 ** (SUBNET_BITS - prefix);
  }

  async create(name: string, labels: Record<string, string>): Promise<SessionNetwork> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 16; attempt++) {
      const start = this.base + randomInt(this.blocks) * 2 ** (32 - SUBNET_BITS);
      const subnet = `${intToIpv4(start)}/${SUBNET_BITS}`;
      const gateway = intToIpv4(start + 1);
      try {
        await this.docker.createNetwork({
          Name: name,
          Driver: 'bridge',
          Internal: true,
          CheckDuplicate: true,
          Labels: labels,
          IPAM: { Driver: 'default', Config: [{ Subnet: subnet, Gateway: gateway }] },
          Options: {
            'com.docker.network.bridge.name': `${BRIDGE_PREFIX}${randomBytes(5).toString('hex')}`,
            'com.docker.network.bridge.enable_icc': 'false',
          },
        });
        return { name, gateway, sandboxAddress: intToIpv4(start + 2), subnet, labels };
      } catch (error) {
        lastError = error;
        const message = String((error as { message?: string }).message ?? error);
        if (!/overlap|in use|already/i.test(message)) break;
      }
    }
    const message = String((lastError as { message?: string } | undefined)?.message ?? lastError);
    if (/overlap|in use|already/i.test(message)) {
      throw new SandpoolError(
        'capacity_exhausted',
        'No free subnet for a session network; close sessions or widen --egress-subnets.',
        2,
        { cause: lastError },
      );
    }
    throw translateDockerError(lastError, 'creating a session network');
  }

  async list(labels: Record<string, string>): Promise<SessionNetwork[]> {
    try {
      const found = await this.docker.listNetworks({
        filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) },
      });
      return found.flatMap((n) => {
        const config = n.IPAM?.Config?.[0];
        if (!config?.Subnet || !config.Gateway) return [];
        const start = ipv4ToInt(config.Subnet.split('/')[0] ?? '');
        return [
          {
            name: n.Name,
            gateway: config.Gateway,
            sandboxAddress: intToIpv4(start + 2),
            subnet: config.Subnet,
            labels: n.Labels ?? {},
          },
        ];
      });
    } catch (error) {
      throw translateDockerError(error, 'listing session networks');
    }
  }

  async remove(name: string): Promise<void> {
    try {
      await this.docker.getNetwork(name).remove();
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return;
      throw translateDockerError(error, 'removing a session network');
    }
  }
}

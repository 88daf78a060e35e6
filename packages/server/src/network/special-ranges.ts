import { BlockList, isIP } from 'node:net';

/**
 * Address ranges the egress proxy never connects to unless an address rule names them:
 * private, loopback, link-local (cloud metadata at 169.254.169.254 lives here), shared CGNAT,
 * "this network", multicast and reserved, and their IPv6 counterparts. IPv4-mapped IPv6 addresses
 * are checked as the IPv4 address they carry.
 */
const RANGES: readonly [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'],
  ['240.0.0.0', 4, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['fc00::', 7, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
];

/** The special ranges plus any the caller adds (the worker adds its sandbox subnets). */
export class SpecialRanges {
  private readonly list = new BlockList();

  constructor(extra: readonly { address: string; prefix: number }[] = []) {
    for (const [address, prefix, family] of RANGES) this.list.addSubnet(address, prefix, family);
    for (const { address, prefix } of extra) {
      this.list.addSubnet(address, prefix, isIP(address) === 6 ? 'ipv6' : 'ipv4');
    }
  }

  /** Whether the address falls in a range that only an explicit address rule may open. */
  contains(address: string): boolean {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped?.[1] !== undefined) return this.list.check(mapped[1], 'ipv4');
    const family = isIP(address);
    if (family === 0) return true; // Not an address at all: refuse.
    return this.list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}

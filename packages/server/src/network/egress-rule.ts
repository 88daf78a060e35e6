import { BlockList, isIP } from 'node:net';

/**
 * One pattern of an egress list: a host name (`pypi.org`), a wildcard (`*.pythonhosted.org`,
 * matching any name below it but not the name itself), `*` (any name), or an address or CIDR
 * (`10.0.0.5`, `10.0.0.0/8`, `[fd00::1]`), with an optional port (`:443`, `:*` for any). No port
 * means 80 and 443.
 */
export interface EgressRule {
  /** The pattern as written, for the audit log. */
  readonly text: string;
  readonly kind: 'name' | 'suffix' | 'any' | 'cidr';
  /** `name`: the name; `suffix`: the name below which names match (no leading dot). */
  readonly name?: string;
  readonly cidr?: { address: string; prefix: number; family: 'ipv4' | 'ipv6' };
  /** `undefined` means any port. */
  readonly ports: readonly number[] | undefined;
}

const DEFAULT_PORTS = [80, 443] as const;
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** Lower-cases a host name and drops a trailing dot; `undefined` when it is no valid name. */
export function normalizeHostName(host: string): string | undefined {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (name.length === 0 || name.length > 253) return undefined;
  return name.split('.').every((label) => LABEL.test(label)) ? name : undefined;
}

/** Parses one pattern; throws an Error whose message says what is wrong. */
export function parseEgressRule(raw: string): EgressRule {
  const text = raw.trim();
  let hostPart = text;
  let portPart: string | undefined;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) throw new Error(`"${raw}": an IPv6 address in brackets lacks its "]"`);
    hostPart = text.slice(1, end);
    const rest = text.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new Error(`"${raw}": expected ":port" after "]"`);
      portPart = rest.slice(1);
    }
  } else if (text.indexOf(':') === text.lastIndexOf(':') && text.includes(':')) {
    // One colon: host:port. Several: a bare IPv6 address (or CIDR), which takes no port.
    const colon = text.indexOf(':');
    hostPart = text.slice(0, colon);
    portPart = text.slice(colon + 1);
  }
  const ports = parsePorts(raw, portPart);
  const host = hostPart.toLowerCase();
  if (host === '*') return { text, kind: 'any', ports };
  const slash = host.indexOf('/');
  const addressPart = slash >= 0 ? host.slice(0, slash) : host;
  const family = isIP(addressPart);
  if (family !== 0) {
    const max = family === 4 ? 32 : 128;
    const prefix = slash >= 0 ? Number(host.slice(slash + 1)) : max;
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || host.slice(slash + 1) === '') {
      throw new Error(`"${raw}": the prefix length must be a whole number from 0 to ${max}`);
    }
    return {
      text,
      kind: 'cidr',
      cidr: { address: addressPart, prefix, family: family === 4 ? 'ipv4' : 'ipv6' },
      ports,
    };
  }
  if (host.startsWith('*.')) {
    const name = normalizeHostName(host.slice(2));
    if (name === undefined) throw new Error(`"${raw}": "${host.slice(2)}" is not a host name`);
    return { text, kind: 'suffix', name, ports };
  }
  const name = normalizeHostName(host);
  if (name === undefined) {
    throw new Error(
      `"${raw}": not a host name, "*.name", "*", an address or a CIDR (with an optional :port)`,
    );
  }
  return { text, kind: 'name', name, ports };
}

function parsePorts(raw: string, portPart: string | undefined): readonly number[] | undefined {
  if (portPart === undefined) return DEFAULT_PORTS;
  if (portPart === '*') return undefined;
  const port = Number(portPart);
  if (!/^\d{1,5}$/.test(portPart) || port < 1 || port > 65535) {
    throw new Error(`"${raw}": the port must be 1-65535 or *`);
  }
  return [port];
}

function portsCover(outer: EgressRule['ports'], inner: EgressRule['ports']): boolean {
  if (outer === undefined) return true;
  if (inner === undefined) return false;
  return inner.every((p) => outer.includes(p));
}

function cidrBlock(rule: EgressRule): BlockList | undefined {
  if (rule.cidr === undefined) return undefined;
  const list = new BlockList();
  list.addSubnet(rule.cidr.address, rule.cidr.prefix, rule.cidr.family);
  return list;
}

/** Whether the rule matches a request for `host` (a name or an address literal) and `port`. */
export function ruleMatchesHost(rule: EgressRule, host: string, port: number): boolean {
  if (rule.ports !== undefined && !rule.ports.includes(port)) return false;
  const family = isIP(host);
  switch (rule.kind) {
    case 'any':
      return family === 0;
    case 'name':
      return family === 0 && host === rule.name;
    case 'suffix':
      return family === 0 && host.endsWith(`.${rule.name}`);
    case 'cidr':
      return family !== 0 && ruleMatchesAddress(rule, host, port);
  }
}

/** Whether an address rule names `address` (and `port`). Name rules never do. */
export function ruleMatchesAddress(rule: EgressRule, address: string, port: number): boolean {
  if (rule.kind !== 'cidr' || rule.cidr === undefined) return false;
  if (rule.ports !== undefined && !rule.ports.includes(port)) return false;
  const family = isIP(address);
  if (family === 0) return false;
  return cidrBlock(rule)?.check(address, family === 4 ? 'ipv4' : 'ipv6') ?? false;
}

/** Whether everything `inner` allows is also allowed by `outer` (for the operator's bound). */
export function ruleCovers(outer: EgressRule, inner: EgressRule): boolean {
  if (!portsCover(outer.ports, inner.ports)) return false;
  switch (outer.kind) {
    case 'any':
      return inner.kind !== 'cidr';
    case 'name':
      return inner.kind === 'name' && inner.name === outer.name;
    case 'suffix':
      return (
        (inner.kind === 'name' || inner.kind === 'suffix') &&
        inner.name !== undefined &&
        (inner.name.endsWith(`.${outer.name}`) ||
          (inner.kind === 'suffix' && inner.name === outer.name))
      );
    case 'cidr': {
      if (inner.kind !== 'cidr' || !inner.cidr || !outer.cidr) return false;
      if (inner.cidr.family !== outer.cidr.family || inner.cidr.prefix < outer.cidr.prefix) {
        return false;
      }
      return cidrBlock(outer)?.check(inner.cidr.address, inner.cidr.family) ?? false;
    }
  }
}

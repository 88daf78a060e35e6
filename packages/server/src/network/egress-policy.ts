import { isIP } from 'node:net';
import {
  normalizeHostName,
  parseEgressRule,
  ruleCovers,
  ruleMatchesAddress,
  ruleMatchesHost,
  type EgressRule,
} from './egress-rule.js';
import type { SpecialRanges } from './special-ranges.js';

/** A session's network request as the API takes it. */
export interface NetworkPolicyInput {
  allow_out: string[];
  deny_out?: string[];
}

/** What the proxy decided about one destination, and why. */
export type EgressDecision =
  | { allowed: true; rule: string }
  | {
      allowed: false;
      /** The deny rule that matched; absent when nothing allowed it. */
      rule?: string;
      reason: 'denied_by_rule' | 'not_allowed' | 'special_address' | 'invalid_host';
    };

/**
 * A session's egress policy: the destinations it may reach. Deny rules win over allow rules;
 * addresses in special ranges (private, loopback, link-local, metadata) are refused unless an
 * allow rule names them as an address or CIDR, so an allowed *name* that resolves inside the
 * operator's network is still refused.
 */
export class EgressPolicy {
  private constructor(
    readonly allow: readonly EgressRule[],
    readonly deny: readonly EgressRule[],
  ) {}

  /** Throws an Error naming the first bad pattern. */
  static parse(input: NetworkPolicyInput): EgressPolicy {
    return new EgressPolicy(
      input.allow_out.map(parseEgressRule),
      (input.deny_out ?? []).map(parseEgressRule),
    );
  }

  /** The patterns as the API shows them. */
  toInput(): NetworkPolicyInput {
    return { allow_out: this.allow.map((r) => r.text), deny_out: this.deny.map((r) => r.text) };
  }

  /** The first decision, on the name (or address literal) the client asked for. */
  decideHost(rawHost: string, port: number): EgressDecision {
    const literal = rawHost.replace(/^\[(.*)\]$/, '$1');
    const host = isIP(literal) !== 0 ? literal : normalizeHostName(rawHost);
    if (host === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
      return { allowed: false, reason: 'invalid_host' };
    }
    const denied = this.deny.find((r) => ruleMatchesHost(r, host, port));
    if (denied) return { allowed: false, rule: denied.text, reason: 'denied_by_rule' };
    const allowed = this.allow.find((r) => ruleMatchesHost(r, host, port));
    return allowed
      ? { allowed: true, rule: allowed.text }
      : { allowed: false, reason: 'not_allowed' };
  }

  /** The second decision, on an address the name resolved to. */
  decideAddress(address: string, port: number, special: SpecialRanges): EgressDecision {
    const denied = this.deny.find((r) => ruleMatchesAddress(r, address, port));
    if (denied) return { allowed: false, rule: denied.text, reason: 'denied_by_rule' };
    if (!special.contains(address)) return { allowed: true, rule: 'public address' };
    const named = this.allow.find((r) => ruleMatchesAddress(r, address, port));
    return named
      ? { allowed: true, rule: named.text }
      : { allowed: false, reason: 'special_address' };
  }

  /** The allow patterns that no pattern of `max` covers (empty when the policy is within it). */
  beyond(max: readonly EgressRule[]): string[] {
    return this.allow.filter((r) => !max.some((m) => ruleCovers(m, r))).map((r) => r.text);
  }
}

/** Parses the operator's comma-separated list (`--egress-allow-max`). */
export function parseRuleList(list: string | undefined): EgressRule[] {
  if (list === undefined) return [];
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(parseEgressRule);
}

/** `tmpl=a,b;other=c` (the `--egress-template-defaults` setting) as a map. */
export function parseTemplateDefaults(text: string | undefined): Map<string, NetworkPolicyInput> {
  const map = new Map<string, NetworkPolicyInput>();
  for (const part of (text ?? '').split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq < 1)
      throw new Error(`--egress-template-defaults: "${part}" is not template=pattern,...`);
    const allow = parseRuleList(part.slice(eq + 1)).map((r) => r.text);
    map.set(part.slice(0, eq).trim(), { allow_out: allow });
  }
  return map;
}

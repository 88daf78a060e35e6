import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EgressPolicy, parseRuleList } from './egress-policy.js';
import { parseEgressRule } from './egress-rule.js';
import { SpecialRanges } from './special-ranges.js';

const special = new SpecialRanges([{ address: '198.19.0.0', prefix: 16 }]);

describe('egress rules', () => {
  it('parses names, wildcards, ports, addresses and CIDRs', () => {
    assert.deepEqual(parseEgressRule('PyPI.org').ports, [80, 443]);
    assert.equal(parseEgressRule('PyPI.org').name, 'pypi.org');
    assert.deepEqual(parseEgressRule('api.github.com:443').ports, [443]);
    assert.equal(parseEgressRule('*.example.com:*').ports, undefined);
    assert.equal(parseEgressRule('*.example.com').kind, 'suffix');
    assert.equal(parseEgressRule('*').kind, 'any');
    assert.deepEqual(parseEgressRule('10.0.0.0/8:5432').cidr, {
      address: '10.0.0.0',
      prefix: 8,
      family: 'ipv4',
    });
    assert.equal(parseEgressRule('[fd00::1]:443').cidr?.family, 'ipv6');
    assert.equal(parseEgressRule('fd00::/8').cidr?.prefix, 8);
    for (const bad of [
      '',
      'a b',
      'host:0',
      'host:70000',
      '*.',
      '10.0.0.0/33',
      'a..b',
      '-a.com',
      'x:y',
    ]) {
      assert.throws(() => parseEgressRule(bad), Error, bad);
    }
  });
});

describe('EgressPolicy', () => {
  const policy = EgressPolicy.parse({
    allow_out: ['pypi.org', '*.pythonhosted.org', 'api.github.com:443', '10.1.2.0/24:8080'],
    deny_out: ['evil.pythonhosted.org'],
  });

  it('allows exactly the listed names, with 80 and 443 when no port is given', () => {
    assert.equal(policy.decideHost('pypi.org', 443).allowed, true);
    assert.equal(policy.decideHost('PYPI.ORG.', 80).allowed, true);
    assert.equal(policy.decideHost('pypi.org', 8443).allowed, false);
    assert.equal(policy.decideHost('files.pythonhosted.org', 443).allowed, true);
    assert.equal(policy.decideHost('a.b.pythonhosted.org', 443).allowed, true);
    assert.equal(
      policy.decideHost('pythonhosted.org', 443).allowed,
      false,
      'a wildcard needs a label',
    );
    assert.equal(policy.decideHost('notpythonhosted.org', 443).allowed, false);
    assert.equal(policy.decideHost('api.github.com', 80).allowed, false);
    assert.equal(policy.decideHost('github.com', 443).allowed, false);
    assert.deepEqual(policy.decideHost('evil.pythonhosted.org', 443), {
      allowed: false,
      rule: 'evil.pythonhosted.org',
      reason: 'denied_by_rule',
    });
    assert.deepEqual(policy.decideHost('bad host', 443), {
      allowed: false,
      reason: 'invalid_host',
    });
  });

  it('matches address literals only against address rules', () => {
    assert.equal(policy.decideHost('10.1.2.3', 8080).allowed, true);
    assert.equal(policy.decideHost('10.1.3.3', 8080).allowed, false);
    assert.equal(
      EgressPolicy.parse({ allow_out: ['*'] }).decideHost('1.2.3.4', 443).allowed,
      false,
    );
  });

  it('refuses private, loopback, link-local, metadata and sandbox addresses unless named', () => {
    for (const address of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.5',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '198.19.3.1',
    ]) {
      assert.deepEqual(
        policy.decideAddress(address, 443, special),
        { allowed: false, reason: 'special_address' },
        address,
      );
    }
    assert.deepEqual(policy.decideAddress('151.101.0.223', 443, special), {
      allowed: true,
      rule: 'public address',
    });
    assert.deepEqual(policy.decideAddress('10.1.2.9', 8080, special), {
      allowed: true,
      rule: '10.1.2.0/24:8080',
    });
    assert.equal(policy.decideAddress('10.1.2.9', 443, special).allowed, false);
  });

  it('stays within the operator bound', () => {
    const max = parseRuleList('pypi.org, *.pythonhosted.org, *.github.com:443, 10.0.0.0/8:*');
    assert.deepEqual(policy.beyond(max), []);
    const wide = EgressPolicy.parse({
      allow_out: [
        'pythonhosted.org',
        '*.github.com',
        'github.com:443',
        '11.0.0.0/8',
        '*',
        'x.pypi.org',
      ],
    });
    assert.deepEqual(wide.beyond(max), [
      'pythonhosted.org',
      '*.github.com',
      'github.com:443',
      '11.0.0.0/8',
      '*',
      'x.pypi.org',
    ]);
    assert.deepEqual(EgressPolicy.parse({ allow_out: ['*.a.github.com:443'] }).beyond(max), []);
    assert.deepEqual(EgressPolicy.parse({ allow_out: ['x.org:*'] }).beyond(parseRuleList('*')), [
      'x.org:*',
    ]);
    assert.deepEqual(
      EgressPolicy.parse({ allow_out: ['x.org:*'] }).beyond(parseRuleList('*:*')),
      [],
    );
  });
});

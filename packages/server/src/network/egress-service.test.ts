import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { SandboxRuntime } from '../runtime/sandbox-runtime.js';
import { CredentialRules } from './credential-rules.js';
import { parseRuleList } from './egress-policy.js';
import { EgressService, parseTemplateDefaults } from './egress-service.js';
import type { SessionNetworks } from './session-network.js';

/** The policy checks only (networks, proxies and sandboxes are exercised in test/egress/). */
function service(allowMax: string | undefined, defaults?: string) {
  return new EgressService({
    workerId: 'w',
    runtime: {} as SandboxRuntime,
    networks: {} as SessionNetworks,
    labels: {},
    allowMax: parseRuleList(allowMax),
    templateDefaults: parseTemplateDefaults(defaults),
    proxyPort: 3128,
    subnetPool: '198.19.0.0/16',
    limits: { maxConnections: 1, bytesPerSecond: 0, connectTimeoutMs: 1000 },
    credentials: CredentialRules.none(),
    log: pino({ level: 'silent' }),
    registry: new Registry(),
  });
}

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return (error as SandpoolError).code;
  }
  return 'none';
};

describe('EgressService.policyFor', () => {
  it('refuses every network request when the operator set no bound', () => {
    assert.equal(
      codeOf(() => service(undefined).policyFor({ allow_out: ['pypi.org'] }, undefined)),
      'egress_not_permitted',
    );
  });

  it('accepts requests within the bound and refuses the rest with 403 or 400', () => {
    const s = service('pypi.org,*.pythonhosted.org');
    assert.deepEqual(s.policyFor({ allow_out: ['files.pythonhosted.org'] }, undefined)?.toInput(), {
      allow_out: ['files.pythonhosted.org'],
      deny_out: [],
    });
    assert.equal(
      codeOf(() => s.policyFor({ allow_out: ['github.com'] }, undefined)),
      'egress_not_permitted',
    );
    assert.equal(
      codeOf(() => s.policyFor({ allow_out: ['no good'] }, undefined)),
      'invalid_request',
    );
  });

  it('gives a session without network its template default, or none', () => {
    const s = service(undefined, 'python=pypi.org,*.pythonhosted.org;default=example.com');
    assert.deepEqual(s.policyFor(undefined, 'python')?.toInput().allow_out, [
      'pypi.org',
      '*.pythonhosted.org',
    ]);
    assert.deepEqual(s.policyFor(undefined, undefined)?.toInput().allow_out, ['example.com']);
    // A template without an entry of its own gets `default`'s list.
    assert.deepEqual(s.policyFor(undefined, 'base')?.toInput().allow_out, ['example.com']);
    assert.equal(service(undefined).policyFor(undefined, 'python'), undefined);
    assert.throws(() => parseTemplateDefaults('nonsense'), /template=pattern/);
  });
});

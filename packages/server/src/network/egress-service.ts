import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { Sandbox, SandboxRuntime } from '../runtime/sandbox-runtime.js';
import { CredentialRules } from './credential-rules.js';
import { EgressAudit, type EgressAuditEntry } from './egress-audit.js';
import { EgressFirewall } from './egress-firewall.js';
import { EgressPolicy, type NetworkPolicyInput } from './egress-policy.js';
import {
  EgressProxy,
  hostResolver,
  type EgressLimits,
  type EgressResolver,
} from './egress-proxy.js';
import type { EgressRule } from './egress-rule.js';
import type { SessionNetwork, SessionNetworks } from './session-network.js';
import { SpecialRanges } from './special-ranges.js';
import { WorkerCa } from './worker-ca.js';

/** Where the sandbox finds the CA bundle that trusts the worker's CA (and the operator's extras). */
export const SANDBOX_CA_BUNDLE = '/tmp/.sandpool-ca-bundle.pem';

export interface EgressServiceOptions {
  workerId: string;
  runtime: SandboxRuntime;
  networks: SessionNetworks;
  /** Labels of everything this worker creates. */
  labels: Record<string, string>;
  /** What sessions may ask for at most; empty = no session may ask for network. */
  allowMax: readonly EgressRule[];
  /** A default `allow_out` per template name (`default`: templates without an entry). */
  templateDefaults: ReadonlyMap<string, NetworkPolicyInput>;
  proxyPort: number;
  /** The subnets session networks come from; the proxy never connects into them. */
  subnetPool: string;
  limits: EgressLimits;
  credentials: CredentialRules;
  /** Extra PEM certificates sandboxes and the proxy (for intercepted hosts) trust. */
  extraTrustPem?: string;
  resolver?: EgressResolver;
  /** Installs the host firewall rules; a test may pass a no-op where they are already present. */
  firewall?: Pick<EgressFirewall, 'install'>;
  log: Logger;
  registry: Registry;
}

interface Attached {
  network: SessionNetwork;
  proxy: EgressProxy;
  policy: EgressPolicy;
}

/**
 * Egress by domain for sessions that ask for it: the policy checks (the operator's bound and
 * template defaults), one isolated network and one proxy per session, the CA bundle inside the
 * sandbox, and the audit. Sessions without a policy never touch it.
 */
export class EgressService {
  private readonly attached = new Map<string, Attached>();
  /** Sessions whose network is being set up (their network exists before they are attached). */
  private readonly creating = new Set<string>();
  readonly audit: EgressAudit;
  private readonly special: SpecialRanges;
  private ca: WorkerCa | undefined;
  private ready: Promise<void> | undefined;

  constructor(private readonly options: EgressServiceOptions) {
    this.audit = new EgressAudit({ log: options.log, registry: options.registry });
    const [address = '', prefix = '16'] = options.subnetPool.split('/');
    this.special = new SpecialRanges([{ address, prefix: Number(prefix) }]);
  }

  /**
   * The policy a new session gets: its own request (checked against the bound), else its
   * template's default, else none (no network, as without this feature).
   */
  policyFor(
    input: NetworkPolicyInput | undefined,
    template: string | undefined,
  ): EgressPolicy | undefined {
    if (input === undefined) {
      const defaults = this.options.templateDefaults;
      const fallback = defaults.get(template ?? 'default') ?? defaults.get('default');
      return fallback === undefined ? undefined : EgressPolicy.parse(fallback);
    }
    return this.checked(input);
  }

  private checked(input: NetworkPolicyInput): EgressPolicy {
    let policy: EgressPolicy;
    try {
      policy = EgressPolicy.parse(input);
    } catch (error) {
      throw new SandpoolError('invalid_request', `network: ${(error as Error).message}.`);
    }
    if (this.options.allowMax.length === 0) {
      throw new SandpoolError(
        'egress_not_permitted',
        'This worker gives sessions no network: its operator has not set --egress-allow-max (SANDPOOL_EGRESS_ALLOW_MAX).',
      );
    }
    const beyond = policy.beyond(this.options.allowMax);
    if (beyond.length > 0) {
      throw new SandpoolError(
        'egress_not_permitted',
        `network.allow_out asks for ${beyond.map((r) => `"${r}"`).join(', ')}, beyond what this worker allows (${this.options.allowMax.map((r) => r.text).join(', ')}); narrow the list.`,
      );
    }
    return policy;
  }

  /** Installs the firewall rules and makes the CA, once, before the first network session. */
  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      await (this.options.firewall ?? new EgressFirewall()).install(this.options.proxyPort);
      if (this.options.credentials.rules.length > 0) {
        this.ca = await WorkerCa.create(`sandpool egress CA ${this.options.workerId}`);
      }
    })().catch((error: unknown) => {
      this.ready = undefined;
      throw new SandpoolError('runtime_unavailable', (error as Error).message, 30, {
        cause: error,
      });
    });
    return this.ready;
  }

  /**
   * A sandbox for `sessionId` on its own network, behind its own proxy, started by `runtime` (the
   * session's template's); `onCreated` hears its id at once, so the reconciler counts it as owned.
   */
  async createSandbox(
    sessionId: string,
    policy: EgressPolicy,
    labels: Record<string, string>,
    env: Record<string, string> = {},
    runtime: SandboxRuntime = this.options.runtime,
    onCreated?: (containerId: string) => void,
  ): Promise<Sandbox> {
    this.creating.add(sessionId);
    try {
      return await this.startOnNetwork(sessionId, policy, labels, env, runtime, onCreated);
    } finally {
      this.creating.delete(sessionId);
    }
  }

  private async startOnNetwork(
    sessionId: string,
    policy: EgressPolicy,
    labels: Record<string, string>,
    env: Record<string, string>,
    runtime: SandboxRuntime,
    onCreated: ((containerId: string) => void) | undefined,
  ): Promise<Sandbox> {
    await this.prepare();
    const network = await this.options.networks.create(`sandpool-egress-${sessionId}`, {
      ...this.options.labels,
      'sandpool.session': sessionId,
      'sandpool.egress': 'true',
    });
    let sandbox: Sandbox | undefined;
    try {
      await this.attach(sessionId, network, policy);
      sandbox = await runtime.create({
        labels: { ...labels, 'sandpool.egress': 'true' },
        env: { ...env, ...this.proxyEnvironment(network) },
        network: { name: network.name, address: network.sandboxAddress, dns: [network.gateway] },
      });
      onCreated?.(sandbox.id);
      await this.installCaBundle(sandbox);
      return sandbox;
    } catch (error) {
      await sandbox?.destroy().catch(() => undefined);
      await this.release(sessionId);
      throw error;
    }
  }

  /** Takes back the network and policy of a session re-adopted after a restart. */
  async adopt(sessionId: string, input: NetworkPolicyInput): Promise<void> {
    await this.prepare();
    const found = await this.options.networks.list({
      ...this.options.labels,
      'sandpool.session': sessionId,
    });
    const network = found[0];
    if (network === undefined) throw new Error(`session ${sessionId} has no egress network left`);
    await this.attach(sessionId, network, EgressPolicy.parse(input));
  }

  /**
   * Removes session networks of this worker whose session is not in `keep` and that this service
   * is not serving or setting up (leftovers: a restart, a removal that failed). A network whose
   * container still exists cannot go yet; a later round retries.
   */
  async removeLeftovers(keep: ReadonlySet<string>): Promise<number> {
    const found = await this.options.networks.list({
      ...this.options.labels,
      'sandpool.egress': 'true',
    });
    const stale = found.filter((n) => {
      const session = n.labels['sandpool.session'] ?? '';
      return !keep.has(session) && !this.attached.has(session) && !this.creating.has(session);
    });
    const outcomes = await Promise.allSettled(
      stale.map((n) => this.options.networks.remove(n.name)),
    );
    return outcomes.filter((o) => o.status === 'fulfilled').length;
  }

  private async attach(
    sessionId: string,
    network: SessionNetwork,
    policy: EgressPolicy,
  ): Promise<void> {
    const attached: Partial<Attached> & { network: SessionNetwork; policy: EgressPolicy } = {
      network,
      policy,
    };
    const proxy = new EgressProxy({
      sessionId,
      host: network.gateway,
      port: this.options.proxyPort,
      peerAddress: () => network.sandboxAddress,
      policy: () => attached.policy,
      resolver: this.options.resolver ?? hostResolver,
      special: this.special,
      audit: this.audit,
      limits: this.options.limits,
      credentials: this.options.credentials,
      ca: this.ca,
      upstreamCa: this.options.extraTrustPem
        ? [...rootCertificates, this.options.extraTrustPem]
        : undefined,
    });
    await proxy.listen();
    attached.proxy = proxy;
    this.attached.set(sessionId, attached as Attached);
  }

  private proxyEnvironment(network: SessionNetwork): Record<string, string> {
    const proxy = `http://${network.gateway}:${this.options.proxyPort}`;
    const bundle = SANDBOX_CA_BUNDLE;
    return {
      HTTP_PROXY: proxy,
      HTTPS_PROXY: proxy,
      http_proxy: proxy,
      https_proxy: proxy,
      NO_PROXY: 'localhost,127.0.0.1,::1',
      no_proxy: 'localhost,127.0.0.1,::1',
      npm_config_proxy: proxy,
      npm_config_https_proxy: proxy,
      NODE_USE_ENV_PROXY: '1',
      SSL_CERT_FILE: bundle,
      REQUESTS_CA_BUNDLE: bundle,
      PIP_CERT: bundle,
      CURL_CA_BUNDLE: bundle,
      GIT_SSL_CAINFO: bundle,
      NODE_EXTRA_CA_CERTS: bundle,
      npm_config_cafile: bundle,
    };
  }

  /** The system bundle plus the worker's CA and the operator's extras, written inside the box. */
  private async installCaBundle(sandbox: Sandbox): Promise<void> {
    const extra = `${this.ca?.certPem ?? ''}${this.options.extraTrustPem ?? ''}`;
    const outcome = await sandbox.exec(
      {
        argv: [
          '/bin/sh',
          '-c',
          `cat /etc/ssl/certs/ca-certificates.crt - > ${SANDBOX_CA_BUNDLE} 2>/dev/null || cat - > ${SANDBOX_CA_BUNDLE}`,
        ],
        cwd: '/tmp',
        stdin: Buffer.from(extra),
        timeoutMs: 10_000,
      },
      { onStdout: () => undefined, onStderr: () => undefined },
    );
    if (outcome.exitCode !== 0) {
      throw new SandpoolError(
        'runtime_unavailable',
        'Could not install the CA bundle in the sandbox; retry.',
        2,
      );
    }
  }

  policyOf(sessionId: string): EgressPolicy | undefined {
    return this.attached.get(sessionId)?.policy;
  }

  /** Changes a running session's policy (the operator's bound applies); new connections see it. */
  setPolicy(sessionId: string, input: NetworkPolicyInput): EgressPolicy {
    const attached = this.attached.get(sessionId);
    if (attached === undefined) {
      throw new SandpoolError(
        'invalid_request',
        'This session was created without network, and a sandbox cannot join one later; create a new session with "network".',
      );
    }
    attached.policy = this.checked(input);
    return attached.policy;
  }

  log(sessionId: string): EgressAuditEntry[] {
    return this.audit.entries(sessionId);
  }

  /** Stops the session's proxy and removes its network (after its sandbox is gone). */
  async release(sessionId: string): Promise<void> {
    const attached = this.attached.get(sessionId);
    this.attached.delete(sessionId);
    this.audit.forget(sessionId);
    await attached?.proxy.close();
    await this.options.networks
      .remove(`sandpool-egress-${sessionId}`)
      .catch((error: unknown) =>
        this.options.log.warn({ err: error, sessionId }, 'could not remove a session network'),
      );
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.attached.keys()].map((id) => this.release(id)));
  }
}

// Parsed with the other settings (worker-config), so it lives with the pure policy code.
export { parseTemplateDefaults } from './egress-policy.js';

/** Reads the operator's extra trust file, if any. */
export function readTrustFile(path: string | undefined): string | undefined {
  return path === undefined ? undefined : readFileSync(path, 'utf8');
}

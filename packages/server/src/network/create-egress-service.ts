import { Resolver } from 'node:dns/promises';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { WorkerConfig } from '../config/worker-config.js';
import { DockerRuntime } from '../runtime/docker/docker-runtime.js';
import type { SandboxRuntime } from '../runtime/sandbox-runtime.js';
import { CredentialRules } from './credential-rules.js';
import { parseRuleList } from './egress-policy.js';
import type { EgressResolver } from './egress-proxy.js';
import { EgressService, parseTemplateDefaults, readTrustFile } from './egress-service.js';

/**
 * The worker's egress service from its settings; `undefined` when the runtime cannot put a
 * sandbox on an isolated network (only the Docker adapter can).
 */
export function createEgressService(
  config: WorkerConfig,
  runtime: SandboxRuntime,
  labels: Record<string, string>,
  registry: Registry,
  log: Logger,
): EgressService | undefined {
  if (!(runtime instanceof DockerRuntime)) return undefined;
  return new EgressService({
    workerId: config.workerId,
    runtime,
    networks: runtime.sessionNetworks(config.egressSubnets),
    labels,
    allowMax: parseRuleList(config.egressAllowMax),
    templateDefaults: parseTemplateDefaults(config.egressTemplateDefaults),
    proxyPort: config.egressProxyPort,
    subnetPool: config.egressSubnets,
    limits: {
      maxConnections: config.egressMaxConnections,
      bytesPerSecond: config.egressBytesPerSecond,
      connectTimeoutMs: 10_000,
    },
    credentials: CredentialRules.fromFile(config.egressCredentialsFile),
    extraTrustPem: readTrustFile(config.egressTrustFile),
    resolver: dnsServerResolver(config.egressDnsServers),
    log,
    registry,
  });
}

/** A resolver asking the given DNS servers (A and AAAA) instead of the host's resolver. */
export function dnsServerResolver(servers: string | undefined): EgressResolver | undefined {
  if (servers === undefined || servers.trim() === '') return undefined;
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers(servers.split(',').map((s) => s.trim()));
  return async (host) => {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const found = [
      ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
      ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
    ];
    if (found.length === 0) {
      throw v4.status === 'rejected' ? (v4.reason as Error) : new Error(`${host}: no address`);
    }
    return found;
  };
}

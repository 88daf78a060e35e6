import { readFileSync } from 'node:fs';
import { parseEgressRule, ruleMatchesHost, type EgressRule } from './egress-rule.js';

/** Headers the proxy adds to requests toward one destination; the sandbox never sees them. */
export interface CredentialRule {
  rule: EgressRule;
  headers: Record<string, string>;
}

/** A rule as the operator writes it in the credentials file. */
interface CredentialRuleInput {
  host: string;
  headers: Record<string, string>;
}

const REFERENCE = /\$\{(env|file):([^}]+)\}/g;

/**
 * The operator's header rules, read once at start-up from a JSON file:
 * `[{"host": "api.github.com", "headers": {"Authorization": "Bearer ${env:GITHUB_TOKEN}"}}]`.
 * `${env:NAME}` takes the worker's environment variable, `${file:/path}` a file's trimmed text.
 */
export class CredentialRules {
  private constructor(readonly rules: readonly CredentialRule[]) {}

  static none(): CredentialRules {
    return new CredentialRules([]);
  }

  static fromJson(text: string, env: NodeJS.ProcessEnv = process.env): CredentialRules {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) throw new Error('the credentials file must hold a JSON array');
    return new CredentialRules(
      parsed.map((item: unknown, i) => {
        const input = item as Partial<CredentialRuleInput>;
        if (typeof input.host !== 'string' || typeof input.headers !== 'object' || !input.headers) {
          throw new Error(`rule ${i}: expected {"host": "...", "headers": {"Name": "value"}}`);
        }
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(input.headers)) {
          if (typeof value !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
            throw new Error(`rule ${i}: header "${name}" must be a token with a string value`);
          }
          headers[name.toLowerCase()] = expand(value, env, i);
        }
        return { rule: parseEgressRule(input.host), headers };
      }),
    );
  }

  static fromFile(path: string | undefined, env: NodeJS.ProcessEnv = process.env): CredentialRules {
    if (path === undefined) return CredentialRules.none();
    return CredentialRules.fromJson(readFileSync(path, 'utf8'), env);
  }

  /** The headers for `host:port`, when a rule names it. */
  headersFor(host: string, port: number): Record<string, string> | undefined {
    const found = this.rules.filter((r) => ruleMatchesHost(r.rule, host, port));
    if (found.length === 0) return undefined;
    return Object.assign({}, ...found.map((r) => r.headers)) as Record<string, string>;
  }

  /** Every secret value, so tests and logs can check none of them leaks. */
  secrets(): string[] {
    return this.rules.flatMap((r) => Object.values(r.headers));
  }
}

function expand(value: string, env: NodeJS.ProcessEnv, index: number): string {
  const out = value.replace(REFERENCE, (_m, kind: string, ref: string) => {
    if (kind === 'env') {
      const found = env[ref];
      if (found === undefined)
        throw new Error(`rule ${index}: environment variable ${ref} is unset`);
      return found;
    }
    return readFileSync(ref, 'utf8').trim();
  });
  if (/[\r\n]/.test(out))
    throw new Error(`rule ${index}: a header value may not hold a line break`);
  return out;
}

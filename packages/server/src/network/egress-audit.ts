import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';

/** One egress decision and what the connection carried. */
export interface EgressAuditEntry {
  time: string;
  session_id: string;
  /** `CONNECT` for tunnels (HTTPS), the method for plain HTTP through the proxy. */
  method: string;
  host: string;
  port: number;
  /** The address the proxy resolved and connected to, when it got that far. */
  address?: string;
  decision: 'allowed' | 'denied';
  /** The pattern that decided (allow or deny), when one did. */
  rule?: string;
  reason?: string;
  /** Whether the proxy terminated TLS to add a header rule's headers. */
  intercepted: boolean;
  bytes_out: number;
  bytes_in: number;
  duration_ms: number;
  error?: string;
}

export interface EgressAuditOptions {
  log: Logger;
  registry: Registry;
  /** Recent entries kept per session for `GET /v1/sessions/{id}/network/log`. */
  keepPerSession?: number;
}

/**
 * Where every egress decision goes: a JSON log line (pino, `component: "egress"`, apart from the
 * worker's own lines), Prometheus counters, and a short per-session history for the API.
 */
export class EgressAudit {
  private readonly recent = new Map<string, EgressAuditEntry[]>();
  private readonly keep: number;
  private readonly log: Logger;
  private readonly decisions: Counter<'decision' | 'reason'>;
  private readonly bytes: Counter<'direction'>;

  constructor(options: EgressAuditOptions) {
    this.keep = options.keepPerSession ?? 200;
    this.log = options.log.child({ component: 'egress' });
    const registers = [options.registry];
    this.decisions = new Counter({
      name: 'sandpool_egress_decisions_total',
      help: 'Egress requests of sandboxes, by decision and reason',
      labelNames: ['decision', 'reason'],
      registers,
    });
    this.bytes = new Counter({
      name: 'sandpool_egress_bytes_total',
      help: 'Bytes sandboxes sent (out) and received (in) through the egress proxy',
      labelNames: ['direction'],
      registers,
    });
  }

  record(entry: EgressAuditEntry): void {
    let list = this.recent.get(entry.session_id);
    if (list === undefined) {
      list = [];
      this.recent.set(entry.session_id, list);
    }
    list.push(entry);
    if (list.length > this.keep) list.splice(0, list.length - this.keep);
    this.decisions.inc({ decision: entry.decision, reason: entry.reason ?? 'rule' });
    if (entry.bytes_out > 0) this.bytes.inc({ direction: 'out' }, entry.bytes_out);
    if (entry.bytes_in > 0) this.bytes.inc({ direction: 'in' }, entry.bytes_in);
    this.log.info({ egress: entry }, `egress ${entry.decision} ${entry.host}:${entry.port}`);
  }

  /** The session's recent entries, oldest first. */
  entries(sessionId: string): EgressAuditEntry[] {
    return [...(this.recent.get(sessionId) ?? [])];
  }

  forget(sessionId: string): void {
    this.recent.delete(sessionId);
  }
}

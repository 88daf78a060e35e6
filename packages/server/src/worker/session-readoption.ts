import type { Logger } from 'pino';
import type { RedisStore, SessionRecord } from '../redis/redis-store.js';
import type { SandboxRuntime, SandboxSummary } from '../runtime/sandbox-runtime.js';

/** A session an earlier run of this worker recorded, whose container still runs. */
export interface ReadoptableSession {
  sessionId: string;
  record: SessionRecord;
  container: SandboxSummary;
}

export interface ReadoptionPlan {
  /** Sessions to keep serving. */
  adopt: ReadoptableSession[];
  /** Containers nobody can account for (pooled, stopped, expired or unrecorded): removed. */
  remove: SandboxSummary[];
  /** Records whose container is gone or will be removed: deleted from Redis. */
  forget: string[];
}

/**
 * Decides, after a restart, which of the worker's leftover containers still carry a live session
 * (recorded in Redis, running, not expired) and which must go.
 */
export function planReadoption(
  records: ReadonlyMap<string, SessionRecord>,
  leftovers: readonly SandboxSummary[],
  nowMs: number,
): ReadoptionPlan {
  const byContainer = new Map<string, [string, SessionRecord]>();
  for (const [sessionId, record] of records)
    byContainer.set(record.container_id, [sessionId, record]);
  const plan: ReadoptionPlan = { adopt: [], remove: [], forget: [] };
  const adopted = new Set<string>();
  for (const container of leftovers) {
    const found = byContainer.get(container.id);
    const labelled = container.labels['sandpool.session'];
    // An on-demand container names its session; a pooled one cannot, so the record must match.
    const consistent = found !== undefined && (labelled === undefined || labelled === found[0]);
    if (found && consistent && container.running && found[1].expires_at > nowMs) {
      plan.adopt.push({ sessionId: found[0], record: found[1], container });
      adopted.add(found[0]);
    } else {
      plan.remove.push(container);
    }
  }
  for (const sessionId of records.keys()) if (!adopted.has(sessionId)) plan.forget.push(sessionId);
  return plan;
}

/**
 * The plan for this worker's leftovers: without Redis (or a runtime that cannot attach) every
 * leftover is removed, as a standalone worker always did; with it, recorded live sessions stay.
 */
export async function planLeftovers(
  store: RedisStore | undefined,
  runtime: SandboxRuntime,
  workerId: string,
  leftovers: readonly SandboxSummary[],
  nowMs: number,
  log: Logger,
): Promise<ReadoptionPlan> {
  const removeAll: ReadoptionPlan = { adopt: [], remove: [...leftovers], forget: [] };
  if (store === undefined || runtime.attach === undefined || leftovers.length === 0) {
    return removeAll;
  }
  let records: Map<string, SessionRecord>;
  try {
    if (!(await store.ready(READY_WAIT_MS))) throw new Error(`no connection to ${store.address}`);
    records = await store.workerSessions(workerId);
  } catch (error) {
    // Without the records nothing can be vouched for; removing beats serving a wrong session.
    log.warn({ err: error }, 'cannot read session records from Redis; removing leftovers');
    return removeAll;
  }
  const plan = planReadoption(records, leftovers, nowMs);
  await store.forgetWorkerSessions(workerId, plan.forget).catch(() => undefined);
  return plan;
}

/** How long a starting worker waits for Redis before giving up on re-adoption. */
const READY_WAIT_MS = 3000;

import type { CreateSessionBody } from '../http/schemas.js';
import type { SessionView } from '../sessions/session-manager.js';

/**
 * The sessions E2B's control plane works on: a worker's own (`WorkerControlBackend`) or, on a
 * coordinator, all workers' through Redis and the worker proxy. The E2B routes only translate.
 */
export interface E2bControlBackend {
  /** Creates a session; `signal` aborts when the client went away (the session is then ended). */
  create(input: CreateSessionBody, signal: AbortSignal): Promise<SessionView>;
  /** The live session, or `session_not_found`. */
  get(id: string): Promise<SessionView>;
  /** Every live session (of this worker, or of every worker). */
  list(): Promise<SessionView[]>;
  /** Sets the session's expiry to `ttlSeconds` from now. */
  keepAlive(id: string, ttlSeconds: number): Promise<SessionView>;
  /** Ends the session; `session_not_found` when there is none. */
  delete(id: string): Promise<void>;
  /** CPU count, memory and disk size of the template's sandboxes, as E2B reports them. */
  resources(template: string): { cpuCount: number; memoryMB: number; diskSizeMB: number };
}

import type { CreateSessionBody } from '../http/schemas.js';
import type { SessionView } from '../sessions/session-manager.js';
import type { E2bReach, E2bSandboxDetail } from './e2b-sandbox-view.js';

/** The list filters the backend may apply itself (the routes apply them again, and page). */
export interface E2bListFilter {
  metadata?: string;
  state?: string;
  template?: string;
  startedAfter?: string;
}

/**
 * The sessions E2B's control plane works on: a worker's own (`WorkerControlBackend`) or, on a
 * coordinator, every worker's through Redis and the worker proxy (`CoordinatorControlBackend`).
 * The E2B routes only translate.
 */
export interface E2bControlBackend {
  /** Creates a session; `signal` aborts when the client went away (the session is then ended). */
  create(input: CreateSessionBody, signal: AbortSignal): Promise<SessionView>;
  /** The live session, or `session_not_found`. */
  get(id: string): Promise<SessionView>;
  /** The live session as E2B details it (resources included), or `session_not_found`. */
  detail(id: string, reach: E2bReach): Promise<E2bSandboxDetail>;
  /** Every live session (of this worker, or of every worker), at least those the filter keeps. */
  details(filter: E2bListFilter, reach: E2bReach): Promise<E2bSandboxDetail[]>;
  /** Sets the session's expiry to `ttlSeconds` from now. */
  keepAlive(id: string, ttlSeconds: number): Promise<SessionView>;
  /** Ends the session; `session_not_found` when there is none. */
  delete(id: string): Promise<void>;
}

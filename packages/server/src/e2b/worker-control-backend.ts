import type { CreateSessionBody } from '../http/schemas.js';
import type { SessionManager, SessionView } from '../sessions/session-manager.js';
import type { E2bControlBackend } from './e2b-control-backend.js';
import {
  e2bDetailOf,
  type E2bReach,
  type E2bResources,
  type E2bSandboxDetail,
} from './e2b-sandbox-view.js';

/** E2B's control plane over a worker's own sessions. */
export class WorkerControlBackend implements E2bControlBackend {
  constructor(
    private readonly sessions: SessionManager,
    private readonly resources: E2bResources,
  ) {}

  async create(input: CreateSessionBody, signal: AbortSignal): Promise<SessionView> {
    const session = await this.sessions.create({
      template: input.template,
      ttlSeconds: input.ttl_seconds,
      env: input.env,
      metadata: input.metadata,
      network: input.network,
    });
    if (signal.aborted) {
      // Nobody will learn the id: end the session now rather than hold its container.
      await this.sessions.delete(session.id).catch(() => undefined);
    }
    return this.sessions.view(session);
  }

  async get(id: string): Promise<SessionView> {
    return this.sessions.view(this.sessions.get(id));
  }

  async detail(id: string, reach: E2bReach): Promise<E2bSandboxDetail> {
    return e2bDetailOf(await this.get(id), reach, this.resources);
  }

  async details(_filter: unknown, reach: E2bReach): Promise<E2bSandboxDetail[]> {
    return this.sessions
      .list()
      .map((s) => e2bDetailOf(this.sessions.view(s), reach, this.resources));
  }

  async keepAlive(id: string, ttlSeconds: number): Promise<SessionView> {
    return this.sessions.view(this.sessions.keepAlive(id, ttlSeconds));
  }

  delete(id: string): Promise<void> {
    return this.sessions.delete(id);
  }
}

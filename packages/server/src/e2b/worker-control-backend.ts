import type { CreateSessionBody } from '../http/schemas.js';
import type { SessionManager, SessionView } from '../sessions/session-manager.js';
import type { E2bControlBackend } from './e2b-control-backend.js';
import type { E2bResources } from './e2b-sandbox-view.js';

/** E2B's control plane over a worker's own sessions. */
export class WorkerControlBackend implements E2bControlBackend {
  constructor(
    private readonly sessions: SessionManager,
    private readonly sandboxResources: E2bResources,
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

  async list(): Promise<SessionView[]> {
    return this.sessions.list().map((s) => this.sessions.view(s));
  }

  async keepAlive(id: string, ttlSeconds: number): Promise<SessionView> {
    return this.sessions.view(this.sessions.keepAlive(id, ttlSeconds));
  }

  delete(id: string): Promise<void> {
    return this.sessions.delete(id);
  }

  resources(): E2bResources {
    return this.sandboxResources;
  }
}

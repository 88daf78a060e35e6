import { HttpTransport, resolveConnection, type ConnectionOptions } from './http-transport.js';
import { deleteSession, getHealth, getSession, listSessions } from './session-api.js';
import type { HealthStatus, SessionInfo, TemplateInfo } from './types.js';
import { parseTemplateList } from './wire.js';

/** Options of the {@link SandpoolClient} calls. */
export interface CallOptions {
  /** Aborts the call. */
  signal?: AbortSignal;
}

/**
 * The service as a whole, for operators and tools (the `sandpool` CLI uses it): health and the
 * list of sessions. To run code, use `Sandbox`.
 *
 * ```ts
 * const client = new SandpoolClient({ url: 'http://127.0.0.1:5000' });
 * console.log((await client.health()).status);
 * ```
 */
export class SandpoolClient {
  private readonly transport: HttpTransport;

  /** `url` and `apiKey` default to `SANDPOOL_URL` and `SANDPOOL_API_KEY`, as for `Sandbox`. */
  constructor(options: ConnectionOptions = {}) {
    this.transport = new HttpTransport(resolveConnection(options));
  }

  /** The base URL of the server. */
  get url(): string {
    return this.transport.url;
  }

  /**
   * `GET /health`. An unhealthy server (503) is an answer here: check `status`, which is
   * `healthy` when all is well.
   */
  async health(options: CallOptions = {}): Promise<HealthStatus> {
    return getHealth(this.transport, options.signal);
  }

  /** The templates the server (or, on a coordinator, the cluster) serves, with their pools. */
  async listTemplates(options: CallOptions = {}): Promise<TemplateInfo[]> {
    return parseTemplateList(
      await this.transport.requestJson({
        method: 'GET',
        path: '/v1/templates',
        signal: options.signal,
      }),
    );
  }

  /** Every open session the server (or, on a coordinator, the cluster) holds. */
  async listSessions(options: CallOptions = {}): Promise<SessionInfo[]> {
    return listSessions(this.transport, options.signal);
  }

  /**
   * One session.
   * @throws {@link SessionNotFoundError} when it is unknown or closed
   */
  async getSession(sessionId: string, options: CallOptions = {}): Promise<SessionInfo> {
    return getSession(this.transport, sessionId, options.signal);
  }

  /**
   * Ends a session and destroys its container.
   * @throws {@link SessionNotFoundError} when it is unknown or already closed
   */
  async deleteSession(sessionId: string, options: CallOptions = {}): Promise<void> {
    await deleteSession(this.transport, sessionId, options.signal);
  }
}

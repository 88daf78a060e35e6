import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { SessionRouter, WorkerTarget } from '../coordinator/session-router.js';
import type { WorkerDirectory } from '../coordinator/worker-directory.js';
import {
  readResponse,
  WorkerUnreachableError,
  type WorkerProxy,
} from '../coordinator/worker-proxy.js';
import { isErrorCode, SandpoolError } from '../errors/sandpool-error.js';
import type { CreateSessionBody } from '../http/schemas.js';
import type { SessionView } from '../sessions/session-manager.js';
import type { E2bControlBackend, E2bListFilter } from './e2b-control-backend.js';
import type { E2bReach, E2bSandboxDetail } from './e2b-sandbox-view.js';

export interface CoordinatorControlBackendOptions {
  router: SessionRouter;
  directory: WorkerDirectory;
  proxy: WorkerProxy;
  /** What the coordinator sends workers as `Authorization` (their API key), if anything. */
  workerApiKey: string | undefined;
  /** The coordinator's own key: workers get it when they have no key of their own set here. */
  apiKey: string | undefined;
}

const ANSWER_LIMIT = 4 * 1024 * 1024;
/** A worker that does not list its sandboxes in this time is left out of a list. */
const FAN_OUT_TIMEOUT_MS = 5000;

/**
 * E2B's control plane on a coordinator: creates are placed by template like sandpool's own
 * (`POST /v1/sessions` through the router), a sandbox's details come from its worker's E2B face,
 * lists span every live worker, and timeout, connect and kill go to the owning worker.
 */
export class CoordinatorControlBackend implements E2bControlBackend {
  constructor(private readonly options: CoordinatorControlBackendOptions) {}

  async create(input: CreateSessionBody, signal: AbortSignal): Promise<SessionView> {
    const body = Buffer.from(JSON.stringify(input));
    const answer = await this.options.router.create('/v1/sessions', body, {
      ...this.auth(),
      'content-type': 'application/json',
      'content-length': body.length,
    });
    const view = parsed<SessionView>(answer.status, answer.body, 201);
    if (signal.aborted) await this.delete(view.session_id).catch(() => undefined);
    return view;
  }

  async get(id: string): Promise<SessionView> {
    const { status, body } = await this.call(id, 'GET', `/v1/sessions/${encodeURIComponent(id)}`);
    return parsed<SessionView>(status, body, 200);
  }

  async detail(id: string, reach: E2bReach): Promise<E2bSandboxDetail> {
    const { status, body } = await this.call(id, 'GET', `/e2b/sandboxes/${encodeURIComponent(id)}`);
    return { ...parsedE2b<E2bSandboxDetail>(status, body, 200), domain: reach.domain };
  }

  async details(filter: E2bListFilter, reach: E2bReach): Promise<E2bSandboxDetail[]> {
    const query = new URLSearchParams({ limit: '1000' });
    for (const [key, value] of Object.entries(filter))
      if (typeof value === 'string') query.set(key, value);
    const workers = (await this.options.directory.list()).filter((w) => w.healthy);
    const lists = await Promise.all(
      workers.map(async (worker) => {
        try {
          const response = await this.options.proxy.send({
            url: `${worker.url}/e2b/v2/sandboxes?${query.toString()}`,
            method: 'GET',
            headers: this.auth(),
            responseTimeoutMs: FAN_OUT_TIMEOUT_MS,
          });
          const body = await readResponse(response, ANSWER_LIMIT);
          return response.statusCode === 200
            ? (JSON.parse(body.toString('utf8')) as E2bSandboxDetail[])
            : [];
        } catch {
          return []; // As sandpool's own list: a worker that does not answer is left out.
        }
      }),
    );
    return lists.flat().map((sandbox) => ({ ...sandbox, domain: reach.domain }));
  }

  async keepAlive(id: string, ttlSeconds: number): Promise<SessionView> {
    const payload = Buffer.from(JSON.stringify({ ttl_seconds: ttlSeconds }));
    const { status, body, target } = await this.call(
      id,
      'POST',
      `/v1/sessions/${encodeURIComponent(id)}/keepalive`,
      payload,
    );
    const view = parsed<SessionView>(status, body, 200);
    await this.options.router.extended(id, target, body);
    return view;
  }

  async delete(id: string): Promise<void> {
    const { status, body } = await this.call(
      id,
      'DELETE',
      `/v1/sessions/${encodeURIComponent(id)}`,
    );
    if (status === 204 || status === 404) await this.options.router.released(id);
    if (status !== 204) parsed(status, body, 204);
  }

  private auth(): OutgoingHttpHeaders {
    // As sandpool's own routes do, workers get the client's key (the coordinator's, checked).
    const key = this.options.workerApiKey ?? this.options.apiKey;
    return key === undefined ? {} : { authorization: `Bearer ${key}` };
  }

  /** One request to the session's worker, answered whole. */
  private async call(
    id: string,
    method: string,
    path: string,
    body?: Buffer,
  ): Promise<{ status: number; body: Buffer; target: WorkerTarget }> {
    const { router, proxy } = this.options;
    const target = await router.route(id);
    let response: IncomingMessage;
    try {
      response = await proxy.send({
        url: `${target.url}${path}`,
        method,
        headers: {
          ...this.auth(),
          ...(body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': body.length }),
        },
        body,
        responseTimeoutMs: 30_000,
      });
      return {
        status: response.statusCode ?? 502,
        body: await readResponse(response, ANSWER_LIMIT),
        target,
      };
    } catch (error) {
      if (error instanceof WorkerUnreachableError)
        throw await router.unreachable(id, target, error);
      throw error;
    }
  }
}

/** A worker's sandpool answer: its body when the status is the expected one, else its error. */
function parsed<T>(status: number, body: Buffer, expected: number): T {
  const text = body.toString('utf8');
  if (status === expected) return (text === '' ? undefined : JSON.parse(text)) as T;
  let error: { code?: unknown; message?: unknown } | undefined;
  try {
    error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
  } catch {
    error = undefined;
  }
  const code = isErrorCode(error?.code) ? error.code : 'runtime_unavailable';
  const message =
    typeof error?.message === 'string' ? error.message : `The worker answered ${status}.`;
  throw new SandpoolError(code, message, code === 'runtime_unavailable' ? 1 : undefined);
}

/** A worker's E2B answer (`{"code","message"}` errors). */
function parsedE2b<T>(status: number, body: Buffer, expected: number): T {
  const text = body.toString('utf8');
  if (status === expected) return JSON.parse(text) as T;
  let message = `The worker answered ${status}.`;
  try {
    const error = JSON.parse(text) as { message?: unknown };
    if (typeof error.message === 'string') message = error.message;
  } catch {
    // Keep the generic message.
  }
  if (status === 404) throw new SandpoolError('session_not_found', message);
  if (status === 401) throw new SandpoolError('unauthorized', message);
  throw new SandpoolError('runtime_unavailable', message, 1);
}

import type { HttpTransport } from './http-transport.js';
import type { HealthStatus, NetworkPolicy, SessionInfo } from './types.js';
import { parseSession, parseSessionList, sessionCreateBody } from './wire.js';

/**
 * The session routes of the API, shared by `Sandbox` (one session) and `SandpoolClient` (the
 * service). Free functions over a transport, so neither class has to own the other.
 */

/** Path of a session's routes. */
export function sessionPath(sessionId: string): string {
  return `/v1/sessions/${encodeURIComponent(sessionId)}`;
}

/** `POST /v1/sessions`. */
export async function createSession(
  transport: HttpTransport,
  options: {
    template?: string;
    ttlSeconds?: number;
    env?: Record<string, string>;
    metadata?: Record<string, string>;
    network?: NetworkPolicy;
    signal?: AbortSignal;
  },
): Promise<SessionInfo> {
  const answer = await transport.requestJson({
    method: 'POST',
    path: '/v1/sessions',
    json: sessionCreateBody(options),
    signal: options.signal,
  });
  return parseSession(answer);
}

/** `GET /v1/sessions/{id}`. */
export async function getSession(
  transport: HttpTransport,
  sessionId: string,
  signal?: AbortSignal,
): Promise<SessionInfo> {
  return parseSession(
    await transport.requestJson({ method: 'GET', path: sessionPath(sessionId), signal }),
  );
}

/** `GET /v1/sessions`. */
export async function listSessions(
  transport: HttpTransport,
  signal?: AbortSignal,
): Promise<SessionInfo[]> {
  return parseSessionList(
    await transport.requestJson({ method: 'GET', path: '/v1/sessions', signal }),
  );
}

/** `POST /v1/sessions/{id}/keepalive`. */
export async function keepAliveSession(
  transport: HttpTransport,
  sessionId: string,
  ttlSeconds: number,
  signal?: AbortSignal,
): Promise<SessionInfo> {
  const answer = await transport.requestJson({
    method: 'POST',
    path: `${sessionPath(sessionId)}/keepalive`,
    json: { ttl_seconds: ttlSeconds },
    signal,
  });
  return parseSession(answer);
}

/** `DELETE /v1/sessions/{id}`. */
export async function deleteSession(
  transport: HttpTransport,
  sessionId: string,
  signal?: AbortSignal,
): Promise<void> {
  await transport.requestJson({ method: 'DELETE', path: sessionPath(sessionId), signal });
}

/** `GET /health`; an unhealthy server's 503 is an answer here, not an error. */
export async function getHealth(
  transport: HttpTransport,
  signal?: AbortSignal,
): Promise<HealthStatus> {
  const answer = await transport.requestJson({
    method: 'GET',
    path: '/health',
    okStatuses: [503],
    signal,
  });
  if (typeof answer !== 'object' || answer === null || !('status' in answer)) {
    return { status: 'unknown', reason: 'the server sent no health status' };
  }
  return answer as HealthStatus;
}

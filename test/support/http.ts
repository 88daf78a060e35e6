/** Small helpers for black-box tests that speak the public HTTP API with plain fetch. */

export interface JsonResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text ? JSON.parse(text) : undefined) as T,
  };
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exit_code: number;
  duration_ms: number;
  timed_out: boolean;
  truncated: boolean;
}

export async function createSession(
  base: string,
  body: Record<string, unknown> = {},
): Promise<string> {
  const created = await call<{ session_id: string }>(base, 'POST', '/v1/sessions', body);
  if (created.status !== 201)
    throw new Error(`create failed: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body.session_id;
}

export async function exec(
  base: string,
  sessionId: string,
  body: Record<string, unknown>,
): Promise<ExecResult> {
  const result = await call<ExecResult>(base, 'POST', `/v1/sessions/${sessionId}/exec`, body);
  if (result.status !== 200)
    throw new Error(`exec failed: ${result.status} ${JSON.stringify(result.body)}`);
  return result.body;
}

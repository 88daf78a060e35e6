import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { containersOf } from './support/docker.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

/**
 * /openapi.json against the real thing: every route of the API is documented, and the answers a
 * real worker gives (successes and errors, JSON and NDJSON) validate against the schemas the
 * document gives for that route, status and content type.
 */

const API_KEY = 'openapi-test-key';

interface Operation {
  requestBody?: { required?: boolean; content: Record<string, { schema: object }> };
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
  security?: unknown[];
}
interface Document {
  openapi: string;
  info: { title: string };
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, unknown> };
}

describe('OpenAPI document', () => {
  let w: TestWorker;
  let doc: Document;
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  const checked: string[] = [];

  const operation = (method: string, path: string): Operation => {
    const op = doc.paths[path]?.[method.toLowerCase()];
    assert.ok(op, `${method} ${path} is not documented`);
    return op;
  };

  const validate = (schema: object, value: unknown, what: string) => {
    const check = ajv.compile(schema);
    assert.ok(check(value), `${what}: ${ajv.errorsText(check.errors)} in ${JSON.stringify(value)}`);
  };

  /**
   * Sends a request, checks the request body against the documented one and the answer against
   * the documented response of its status and content type, and returns the answer.
   */
  const request = async (
    method: string,
    path: string,
    actual: string,
    init: { json?: unknown; body?: string; headers?: Record<string, string>; auth?: boolean } = {},
  ): Promise<{ status: number; text: string; contentType: string }> => {
    const op = operation(method, path);
    const headers: Record<string, string> = { ...init.headers };
    if (init.auth !== false) headers.authorization = `Bearer ${API_KEY}`;
    let body: string | undefined = init.body;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
      const documented = op.requestBody?.content['application/json']?.schema;
      assert.ok(documented, `${method} ${path} documents no JSON body`);
      validate(documented, init.json, `request body of ${method} ${path}`);
    }
    const response = await fetch(`${w.url}${actual}`, { method, headers, body });
    const text = await response.text();
    const contentType = (response.headers.get('content-type') ?? '').split(';')[0] ?? '';
    const documented = op.responses[String(response.status)];
    assert.ok(documented, `${method} ${path} answered ${response.status}, which is not documented`);
    if (text !== '') {
      const media = documented.content?.[contentType];
      assert.ok(media, `${method} ${path} ${response.status}: ${contentType} is not documented`);
      if (contentType === 'application/json') {
        validate(media.schema, JSON.parse(text), `${method} ${path} ${response.status}`);
      } else if (contentType === 'application/x-ndjson') {
        for (const line of text.split('\n').filter(Boolean)) {
          validate(media.schema, JSON.parse(line), `${method} ${path} event`);
        }
      }
    }
    checked.push(`${method} ${path} ${response.status}`);
    return { status: response.status, text, contentType };
  };

  before(async () => {
    w = await startWorker({ poolSize: 1, maxSessions: 3, apiKey: API_KEY });
    const response = await fetch(`${w.url}/openapi.json`); // no key: documentation is public
    assert.equal(response.status, 200);
    doc = (await response.json()) as Document;
  });

  after(async () => {
    await w?.close();
    assert.deepEqual(await containersOf(w.workerId), [], 'containers left behind');
  });

  test('is OpenAPI 3.1 and documents every route, with bearer auth but for /health', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.components.securitySchemes.bearer);
    const routes = [
      'POST /v1/sessions',
      'GET /v1/sessions',
      'GET /v1/sessions/{id}',
      'POST /v1/sessions/{id}/keepalive',
      'DELETE /v1/sessions/{id}',
      'GET /v1/templates',
      'POST /v1/sessions/{id}/exec',
      'GET /v1/sessions/{id}/execs',
      'PUT /v1/sessions/{id}/files',
      'GET /v1/sessions/{id}/files',
      'GET /v1/sessions/{id}/files/list',
      'DELETE /v1/sessions/{id}/files',
      'GET /health',
      'GET /metrics',
      'POST /create_session',
      'POST /execute',
      'POST /mcp',
    ];
    for (const route of routes) {
      const [method = '', path = ''] = route.split(' ');
      operation(method, path);
    }
    assert.deepEqual(operation('GET', '/health').security, []);
    assert.equal(operation('POST', '/v1/sessions').requestBody?.required, false);
  });

  test('real answers match the documented schemas', async () => {
    const created = await request('POST', '/v1/sessions', '/v1/sessions', {
      json: { ttl_seconds: 600, metadata: { test: 'openapi' } },
    });
    assert.equal(created.status, 201);
    const id = (JSON.parse(created.text) as { session_id: string }).session_id;
    const s = `/v1/sessions/${id}`;

    await request('GET', '/v1/sessions', '/v1/sessions');
    await request('GET', '/v1/templates', '/v1/templates');
    await request('GET', '/v1/sessions/{id}', s);
    await request('POST', '/v1/sessions/{id}/keepalive', `${s}/keepalive`, {
      json: { ttl_seconds: 900 },
    });
    const ran = await request('POST', '/v1/sessions/{id}/exec', `${s}/exec`, {
      json: { command: 'echo out; echo err >&2; exit 3' },
    });
    assert.match(ran.text, /"exit_code":3/);
    const streamed = await request('POST', '/v1/sessions/{id}/exec', `${s}/exec`, {
      json: { argv: ['python3', '-c', 'print(6*7)'] },
      headers: { accept: 'application/x-ndjson' },
    });
    assert.equal(streamed.contentType, 'application/x-ndjson');
    assert.match(streamed.text, /"type":"exit"/);
    await request('POST', '/execute', '/execute', { json: { session_id: id, command: 'true' } });

    const put = await request('PUT', '/v1/sessions/{id}/files', `${s}/files?path=dir/a.txt`, {
      body: 'hello',
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(put.status, 201);
    const got = await request('GET', '/v1/sessions/{id}/files', `${s}/files?path=dir/a.txt`);
    assert.equal(got.contentType, 'application/octet-stream');
    assert.equal(got.text, 'hello');
    await request('GET', '/v1/sessions/{id}/files/list', `${s}/files/list?path=dir`);
    assert.equal(
      (await request('DELETE', '/v1/sessions/{id}/files', `${s}/files?path=dir/a.txt`)).status,
      204,
    );

    // Errors: each in the documented error shape, with a documented status.
    assert.equal(
      (await request('GET', '/v1/sessions/{id}/files', `${s}/files?path=dir/a.txt`)).status,
      404,
    );
    assert.equal(
      (await request('GET', '/v1/sessions/{id}/files/list', `${s}/files/list?path=../../etc`))
        .status,
      400,
    );
    assert.equal(
      (
        await request('POST', '/v1/sessions/{id}/exec', `${s}/exec`, {
          body: JSON.stringify({ command: 'true', unknown: 1 }),
          headers: { 'content-type': 'application/json' },
        })
      ).status,
      400,
    );
    assert.equal(
      (await request('GET', '/v1/sessions', '/v1/sessions', { auth: false })).status,
      401,
    );

    await request('GET', '/health', '/health', { auth: false });
    const metrics = await request('GET', '/metrics', '/metrics');
    assert.equal(metrics.contentType, 'text/plain');
    assert.equal((await request('DELETE', '/v1/sessions/{id}', s)).status, 204);
    assert.equal((await request('GET', '/v1/sessions/{id}', s)).status, 404);
    assert.equal((await request('POST', '/create_session', '/create_session')).status, 201);
    assert.ok(checked.length >= 20, checked.join('\n'));
  });

  test('/docs serves Swagger UI without a key', async () => {
    const page = await fetch(`${w.url}/docs`, { redirect: 'follow' });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /swagger/i);
    const css = await fetch(`${w.url}/docs/static/swagger-ui.css`);
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /text\/css/);
    assert.ok((await css.text()).length > 1000);
  });
});

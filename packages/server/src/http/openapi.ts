import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { Type } from '@sinclair/typebox';
import { ExecResult } from './schemas.js';
import { isE2bPath } from '../e2b/e2b-face.js';

/** Routes that describe the API rather than use it: served without a key, like /health. */
export function isDocumentationRoute(url: string): boolean {
  return url === '/openapi.json' || url === '/docs' || url.startsWith('/docs/');
}

/** Routes whose JSON body may be left out (`curl -X POST .../create_session`). */
const OPTIONAL_BODIES = ['/v1/sessions', '/create_session', '/v1/sessions/{id}/keepalive'];

/** One line of `Accept: application/x-ndjson` exec output. */
const ExecEvent = Type.Union([
  Type.Object({ type: Type.Literal('stdout'), data: Type.String() }),
  Type.Object({ type: Type.Literal('stderr'), data: Type.String() }),
  Type.Object({
    type: Type.Literal('exit'),
    exit_code: Type.Integer(),
    duration_ms: Type.Integer(),
    timed_out: Type.Boolean(),
    truncated: Type.Boolean(),
  }),
  Type.Object({
    type: Type.Literal('error'),
    error: Type.Object({ code: Type.String(), message: Type.String() }),
  }),
]);

/**
 * What the route schemas cannot say because they also drive validation and serialization: the
 * upload's raw body, the bytes and text some routes answer, and exec's streamed alternative.
 */
function documentOnly(method: string, route: string, schema: FastifySchema): FastifySchema {
  const url = route.replaceAll(':id', '{id}');
  if (method === 'PUT' && url === '/v1/sessions/{id}/files') {
    return {
      ...schema,
      consumes: ['application/octet-stream'],
      body: Type.String({ format: 'binary', description: 'The file’s bytes, any content type' }),
    };
  }
  // Only the success is bytes or text; the errors stay JSON.
  if (method === 'GET' && url === '/v1/sessions/{id}/files') {
    return withSuccess(schema, 200, 'The file’s bytes, streamed', {
      'application/octet-stream': { schema: Type.String({ format: 'binary' }) },
    });
  }
  if (method === 'GET' && url === '/metrics') {
    return withSuccess(schema, 200, 'Prometheus text exposition format', {
      'text/plain': { schema: Type.String() },
    });
  }
  if (method === 'POST' && (url === '/v1/sessions/{id}/exec' || url === '/execute')) {
    return withSuccess(
      schema,
      200,
      'The result; with `Accept: application/x-ndjson`, one event a line as output arrives, the last `exit` (or `error`)',
      {
        'application/json': { schema: ExecResult },
        'application/x-ndjson': { schema: ExecEvent },
      },
    );
  }
  return schema;
}

/** Replaces one documented response with explicit content types. */
function withSuccess(
  schema: FastifySchema,
  status: number,
  description: string,
  content: Record<string, { schema: unknown }>,
): FastifySchema {
  const response = (schema.response ?? {}) as Record<string, unknown>;
  return { ...schema, response: { ...response, [status]: { description, content } } };
}

/**
 * The OpenAPI 3.1 document of every route, generated from the route schemas, at
 * `/openapi.json`, and Swagger UI over it at `/docs`. Register before the routes.
 */
export async function registerOpenApi(
  app: FastifyInstance,
  info: { title: string; version: string; description: string },
): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info,
      tags: [
        { name: 'sessions', description: 'Open, inspect, extend and end sandboxes' },
        { name: 'templates', description: 'The sandbox images served, each with its warm pool' },
        { name: 'exec', description: 'Run commands' },
        { name: 'files', description: 'Move files in and out, as the sandbox user' },
        { name: 'service', description: 'Health and metrics' },
        { name: 'seed', description: 'The routes of the original Sandbox System V2' },
        { name: 'mcp', description: 'Model Context Protocol over streamable HTTP' },
      ],
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'SANDPOOL_API_KEY, when the server has one',
          },
        },
      },
      security: [{ bearer: [] }],
    },
    transformObject: (document) => {
      if (!('openapiObject' in document)) return document.swaggerObject;
      // A body-less POST means "no options" here; the generator marks every body required.
      for (const path of OPTIONAL_BODIES) {
        const body = document.openapiObject.paths?.[path]?.post?.requestBody;
        if (body !== undefined && !('$ref' in body)) body.required = false;
      }
      return document.openapiObject;
    },
    transform: ({ schema, url, route }) => {
      // E2B's face follows E2B's own API documents (docs/e2b.md), not this one.
      if (isE2bPath(url)) return { schema: { ...schema, hide: true }, url };
      const method = Array.isArray(route.method) ? String(route.method[0]) : String(route.method);
      return { schema: documentOnly(method, url, schema), url };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

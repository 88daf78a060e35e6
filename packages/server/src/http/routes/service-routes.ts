import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Registry } from 'prom-client';
import { errorResponses, HealthView } from '../schemas.js';

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  [field: string]: unknown;
}

/** Documents the metrics' body: Prometheus text, sent as is (its content-type is not JSON). */
const MetricsText = Type.String({ description: 'Prometheus text exposition format' });

export const serviceRoutes: FastifyPluginAsyncTypebox<{
  health: () => Promise<HealthReport>;
  registry: Registry;
}> = async (app, { health, registry }) => {
  app.get(
    '/health',
    {
      schema: {
        tags: ['service'],
        summary: 'Health (no API key needed); 503 when the engine does not answer',
        security: [],
        response: { 200: HealthView, 503: HealthView },
      },
    },
    async (_request, reply) => {
      const report = await health();
      return reply.code(report.status === 'healthy' ? 200 : 503).send(report);
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['service'],
        summary: 'Prometheus metrics (text exposition format)',
        response: { 200: MetricsText, ...errorResponses(401) },
      },
    },
    async (_request, reply) =>
      reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
};

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  [field: string]: unknown;
}

export const serviceRoutes: FastifyPluginAsyncTypebox<{
  health: () => Promise<HealthReport>;
  registry: Registry;
}> = async (app, { health, registry }) => {
  app.get('/health', async (_request, reply) => {
    const report = await health();
    return reply.code(report.status === 'healthy' ? 200 : 503).send(report);
  });

  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
};

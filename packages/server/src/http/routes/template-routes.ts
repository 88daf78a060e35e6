import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { TemplateView } from '../../templates/template-pools.js';
import { errorResponses, TemplateList } from '../schemas.js';

/** `GET /v1/templates`: what this worker can start sessions on, with each pool's figures. */
export const templateRoutes: FastifyPluginAsyncTypebox<{
  templates: () => TemplateView[];
}> = async (app, { templates }) => {
  app.get(
    '/v1/templates',
    {
      schema: {
        tags: ['templates'],
        summary: 'List the templates this server serves, each with its warm pool',
        response: { 200: TemplateList, ...errorResponses(401) },
      },
    },
    async () => ({ templates: templates() }),
  );
};

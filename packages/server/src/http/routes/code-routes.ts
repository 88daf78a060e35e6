import { PassThrough } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type { CodeEvent } from '../../code/code-event.js';
import type { CodeService, RunCodeInput } from '../../code/code-service.js';
import { resolveCwd } from '../../exec/exec-service.js';
import { abortOnDisconnect } from '../client-disconnect.js';
import {
  CodeContextList,
  CodeContextView,
  CodeExecutionView,
  ContextParams,
  CreateContextBody,
  RunCodeBody,
} from '../code-schemas.js';
import { errorResponses, SessionParams } from '../schemas.js';

const NDJSON = 'application/x-ndjson';

/** The code interpreter: cells (JSON or NDJSON events) and their contexts. */
export const codeRoutes: FastifyPluginAsyncTypebox<{ code: CodeService }> = async (
  app,
  { code },
) => {
  app.post(
    '/v1/sessions/:id/code',
    {
      schema: {
        tags: ['code'],
        summary:
          'Run a code cell in a persistent context (JSON result, or NDJSON events with Accept: application/x-ndjson)',
        params: SessionParams,
        body: RunCodeBody,
        response: { 200: CodeExecutionView, ...errorResponses(400, 401, 404, 410, 503) },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const input: RunCodeInput = {
        code: body.code,
        language: body.language,
        contextId: body.context_id,
        timeoutMs: body.timeout_ms,
        env: body.env,
      };
      const sessionId = request.params.id;
      const signal = abortOnDisconnect(reply);
      if (!(request.headers.accept ?? '').includes(NDJSON)) {
        return code.run(sessionId, input, signal);
      }
      return streamCell(code, request, reply, sessionId, input, signal);
    },
  );

  app.post(
    '/v1/sessions/:id/contexts',
    {
      schema: {
        tags: ['code'],
        summary: 'Create a code context (its own kernel or shell)',
        params: SessionParams,
        body: CreateContextBody,
        response: { 201: CodeContextView, ...errorResponses(400, 401, 404, 410, 503) },
      },
    },
    async (request, reply) => {
      const { language, cwd } = request.body;
      const context = await code.createContext(request.params.id, {
        language,
        cwd: cwd === undefined ? undefined : resolveCwd(cwd),
      });
      return reply.code(201).send(context);
    },
  );

  app.get(
    '/v1/sessions/:id/contexts',
    {
      schema: {
        tags: ['code'],
        summary: 'List the session’s code contexts',
        params: SessionParams,
        response: { 200: CodeContextList, ...errorResponses(401, 404, 410, 503) },
      },
    },
    async (request) => ({ contexts: await code.listContexts(request.params.id) }),
  );

  app.post(
    '/v1/sessions/:id/contexts/:cid/restart',
    {
      schema: {
        tags: ['code'],
        summary: 'Restart a code context (its variables are gone)',
        params: ContextParams,
        response: { 200: CodeContextView, ...errorResponses(401, 404, 410, 503) },
      },
    },
    async (request) => code.restartContext(request.params.id, request.params.cid),
  );

  app.delete(
    '/v1/sessions/:id/contexts/:cid',
    {
      schema: {
        tags: ['code'],
        summary: 'Delete a code context',
        params: ContextParams,
        response: {
          204: Type.Null({ description: 'Deleted' }),
          ...errorResponses(401, 404, 410, 503),
        },
      },
    },
    async (request, reply) => {
      await code.deleteContext(request.params.id, request.params.cid);
      return reply.code(204).send(null);
    },
  );
};

/** The NDJSON face of a cell: each event as a line as soon as it happens, `end` last. */
async function streamCell(
  code: CodeService,
  request: FastifyRequest,
  reply: FastifyReply,
  sessionId: string,
  input: RunCodeInput,
  signal: AbortSignal,
): Promise<FastifyReply> {
  code.check(sessionId, input);
  const out = new PassThrough();
  // Headers wait for the first event, so a refusal (unknown context) still gets its status.
  let started: (() => void) | undefined;
  const firstEvent = new Promise<void>((resolve) => (started = resolve));
  const emit = async (event: CodeEvent | { type: 'error'; error: unknown }) => {
    started?.();
    if (!out.write(`${JSON.stringify(event)}\n`) && !out.destroyed) {
      await new Promise<void>((resolve) => {
        out.once('drain', resolve);
        out.once('close', resolve);
      });
    }
  };
  const running = code.stream(sessionId, input, emit, signal);
  const early = await Promise.race([
    firstEvent.then(() => undefined),
    running.then(
      () => undefined,
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    ),
  ]);
  if (early !== undefined) throw early;
  running
    .catch(async (error: unknown) => {
      const failure =
        error instanceof SandpoolError
          ? error
          : new SandpoolError('runtime_unavailable', `The cell could not finish: ${String(error)}`);
      request.log.warn({ err: error }, 'code stream failed');
      await emit({ type: 'error', error: failure.toBody().error });
    })
    .finally(() => out.end());
  return reply.header('content-type', NDJSON).header('cache-control', 'no-store').send(out);
}

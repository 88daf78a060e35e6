import { PassThrough } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type { ExecEvent, ExecInput, ExecService } from '../../exec/exec-service.js';
import {
  errorResponses,
  ExecBody,
  ExecResult,
  SeedExecuteBody,
  SessionParams,
} from '../schemas.js';
import { abortOnDisconnect } from '../client-disconnect.js';
import { internalError } from '../error-handler.js';
import { waitForDrain } from '../wait-for-drain.js';

const execResponses = { 200: ExecResult, ...errorResponses(400, 401, 404, 410, 503) };

const NDJSON = 'application/x-ndjson';

const ExecRecordList = Type.Object(
  {
    execs: Type.Array(
      Type.Object({
        command: Type.String(),
        started_at: Type.String(),
        exit_code: Type.Union([Type.Integer(), Type.Null()]),
        duration_ms: Type.Integer(),
        timed_out: Type.Boolean(),
        error: Type.Union([Type.String(), Type.Null()]),
      }),
    ),
  },
  { description: 'The session’s recent execs, newest first' },
);

function toInput(body: ExecBody): ExecInput {
  return {
    command: body.command,
    argv: body.argv,
    cwd: body.cwd,
    env: body.env,
    stdin: body.stdin,
    timeoutMs: body.timeout_ms,
  };
}

export const execRoutes: FastifyPluginAsyncTypebox<{ exec: ExecService }> = async (
  app,
  { exec },
) => {
  const handle = async (
    request: FastifyRequest,
    reply: FastifyReply,
    sessionId: string,
    body: ExecBody,
  ) => {
    const input = toInput(body);
    const signal = abortOnDisconnect(reply);
    if (!(request.headers.accept ?? '').includes(NDJSON)) {
      return exec.run(sessionId, input, signal);
    }
    exec.check(sessionId, input); // Fail with a status while headers can still say so.
    const out = new PassThrough();
    const emit = async (event: ExecEvent | { type: 'error'; error: unknown }) => {
      // Waiting for the client to read keeps a fast command from filling the worker's memory.
      if (!out.write(`${JSON.stringify(event)}\n`)) await waitForDrain(out);
    };
    exec
      .stream(sessionId, input, emit, signal)
      .catch(async (error: unknown) => {
        const failure = error instanceof SandpoolError ? error : internalError(error);
        if (failure.status >= 500) request.log.error({ err: error }, 'exec stream failed');
        else request.log.info({ code: failure.code }, failure.message);
        await emit({ type: 'error', error: failure.toBody().error });
      })
      .finally(() => out.end());
    return reply.header('content-type', NDJSON).header('cache-control', 'no-store').send(out);
  };

  app.post(
    '/v1/sessions/:id/exec',
    {
      schema: {
        tags: ['exec'],
        summary: 'Run a command (JSON result, or NDJSON events with Accept: application/x-ndjson)',
        params: SessionParams,
        body: ExecBody,
        response: execResponses,
      },
    },
    async (request, reply) => handle(request, reply, request.params.id, request.body),
  );

  app.get(
    '/v1/sessions/:id/execs',
    {
      schema: {
        tags: ['exec'],
        summary: 'Recent execs of a session (newest first) with exit codes and durations',
        params: SessionParams,
        response: { 200: ExecRecordList, ...errorResponses(401, 404, 410) },
      },
    },
    async (request) => ({ execs: exec.recent(request.params.id) }),
  );

  // The seed's route: the session travels in the body.
  app.post(
    '/execute',
    {
      schema: {
        tags: ['seed'],
        summary: 'The seed’s exec: the session travels in the body',
        body: SeedExecuteBody,
        response: execResponses,
      },
    },
    async (request, reply) => {
      const { session_id: sessionId, ...body } = request.body;
      return handle(request, reply, sessionId, body);
    },
  );
};

import { PassThrough } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { CodeEvent, CodeLanguage, CodeResult } from '../code/code-event.js';
import type { CodeService } from '../code/code-service.js';
import { SandpoolError } from '../errors/sandpool-error.js';
import { resolveCwd } from '../exec/exec-service.js';
import { abortOnDisconnect } from '../http/client-disconnect.js';
import { installJsonBodies } from '../http/json-bodies.js';
import { EnvSchema } from '../http/schemas.js';
import { JUPYTER_PORT } from './e2b-sandbox-view.js';
import type { EnvdMount } from './sandbox-scope.js';

const ExecuteBody = Type.Object(
  {
    code: Type.String({ maxLength: 1024 * 1024 }),
    context_id: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
    language: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()])),
    env_vars: Type.Optional(Type.Union([EnvSchema, Type.Null()])),
  },
  { additionalProperties: false },
);
type ExecuteBody = Static<typeof ExecuteBody>;

const CreateContextBody = Type.Object(
  {
    language: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()])),
    cwd: Type.Optional(Type.Union([Type.String({ maxLength: 4096 }), Type.Null()])),
  },
  { additionalProperties: false },
);
const ContextParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/** E2B's `Context`. */
interface E2bContext {
  id: string;
  language: string;
  cwd: string;
}

const config = { e2bPort: JUPYTER_PORT };
/** How long `/execute` holds its headers for the cell's first line (see below). */
const HEADERS_WAIT_MS = 500;

/**
 * The code interpreter's Jupyter routes (`@e2b/code-interpreter` on port 49999) over sandpool's
 * code service: `POST /execute` streams the lines `runCode` parses (`stdout`, `stderr`, `result`,
 * `error`, `number_of_executions`, `end_of_execution`), and the contexts routes manage kernels.
 */
export const jupyterRoutes: EnvdMount = async (plain, { sessionOf, services }) => {
  const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
  const { code } = services;
  installJsonBodies(scope);
  if (code === undefined) {
    scope.all('/execute', { config }, async () => {
      throw noCodeInterpreter();
    });
    return;
  }

  scope.post('/execute', { config, schema: { body: ExecuteBody } }, async (request, reply) => {
    const session = sessionOf(request);
    const { body } = request;
    if (body.context_id && body.language)
      throw new SandpoolError('invalid_request', 'Send context_id or language, not both.');
    const input = {
      code: body.code,
      contextId: body.context_id ?? undefined,
      language: languageOf(body.language),
      env: body.env_vars ?? undefined,
      // The SDK times the cell out itself (runCode's timeoutMs) and then hangs up.
      timeoutMs: code.maxTimeoutMs,
    };
    code.check(session.id, input);
    const signal = abortOnDisconnect(reply);
    const out = new PassThrough();
    const write = async (line: Record<string, unknown>) => {
      if (!out.write(`${JSON.stringify(line)}\n`) && !out.destroyed) {
        await new Promise<void>((resolve) => {
          out.once('drain', resolve);
          out.once('close', resolve);
        });
      }
    };
    let started: (() => void) | undefined;
    const firstLine = new Promise<void>((resolve) => (started = resolve));
    const running = code.stream(
      session.id,
      input,
      async (event) => {
        started?.();
        for (const line of e2bLinesOf(event)) await write(line);
      },
      signal,
    );
    // The status waits for the first line, so a refusal (an unknown context) is still a 404;
    // but not long: the SDK counts runCode's timeoutMs from the headers on.
    let headersDue: NodeJS.Timeout | undefined;
    const early = await Promise.race([
      firstLine.then(() => undefined),
      new Promise<undefined>((resolve) => {
        headersDue = setTimeout(() => resolve(undefined), HEADERS_WAIT_MS);
      }),
      running.then(
        () => undefined,
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      ),
    ]);
    clearTimeout(headersDue);
    if (early !== undefined) throw early;
    running
      .catch(async (error: unknown) => {
        request.log.warn({ err: error }, 'E2B execute stream failed');
        const failure = error instanceof SandpoolError ? error : undefined;
        await write({
          type: 'error',
          name: failure?.code ?? 'SandpoolError',
          value: failure?.message ?? `The cell could not finish: ${String(error)}`,
          traceback: '',
        });
        await write({ type: 'unexpected_end_of_execution' });
      })
      .finally(() => out.end());
    // Node sends the head with the first body bytes; a quiet cell must not hold it back.
    reply.raw.once('pipe', () => reply.raw.flushHeaders());
    return reply
      .header('content-type', 'application/x-ndjson')
      .header('cache-control', 'no-store')
      .send(out);
  });

  registerContextRoutes(plain, code, sessionOf);
};

function registerContextRoutes(
  scope: FastifyInstance,
  code: CodeService,
  sessionOf: Parameters<EnvdMount>[1]['sessionOf'],
): void {
  scope.post('/contexts', { config, schema: { body: CreateContextBody } }, async (request) => {
    const body = request.body as Static<typeof CreateContextBody>;
    const context = await code.createContext(sessionOf(request).id, {
      language: languageOf(body.language),
      cwd: body.cwd ? resolveCwd(body.cwd) : undefined,
    });
    return e2bContextOf(context);
  });

  scope.get('/contexts', { config }, async (request) =>
    (await code.listContexts(sessionOf(request).id)).map(e2bContextOf),
  );

  scope.post(
    '/contexts/:id/restart',
    { config, schema: { params: ContextParams } },
    async (request, reply) => {
      const { id } = request.params as Static<typeof ContextParams>;
      await code.restartContext(sessionOf(request).id, id);
      return reply.code(204).send();
    },
  );

  scope.delete(
    '/contexts/:id',
    { config, schema: { params: ContextParams } },
    async (request, reply) => {
      const { id } = request.params as Static<typeof ContextParams>;
      await code.deleteContext(sessionOf(request).id, id);
      return reply.code(204).send();
    },
  );
}

function e2bContextOf(context: {
  context_id: string;
  language: CodeLanguage;
  cwd: string;
}): E2bContext {
  return { id: context.context_id, language: context.language, cwd: context.cwd };
}

/** sandpool's languages under E2B's names; E2B's others are refused with what sandpool runs. */
export function languageOf(language: string | null | undefined): CodeLanguage | undefined {
  if (language === undefined || language === null || language === '') return undefined;
  const name = language.toLowerCase();
  if (name === 'python' || name === 'python3') return 'python';
  if (name === 'bash' || name === 'sh') return 'bash';
  throw new SandpoolError(
    'invalid_request',
    `Language "${language}" is not supported by sandpool's code interpreter; it runs python and bash.`,
  );
}

/** One sandpool code event as the lines `@e2b/code-interpreter`'s `runCode` parses. */
export function e2bLinesOf(event: CodeEvent): Record<string, unknown>[] {
  const timestamp = new Date().toISOString();
  switch (event.type) {
    case 'stdout':
    case 'stderr':
      return [{ type: event.type, text: event.data, timestamp }];
    case 'result':
      return [resultLineOf(event)];
    case 'error':
      return [{ type: 'error', name: event.name, value: event.value, traceback: event.traceback }];
    case 'end':
      return [
        ...(event.execution_count === null
          ? []
          : [{ type: 'number_of_executions', execution_count: event.execution_count }]),
        { type: 'end_of_execution' },
      ];
  }
}

/** E2B's result line: the formats at the top, and other MIME types beside them (its `extra`). */
function resultLineOf(result: CodeResult & { type: 'result' }): Record<string, unknown> {
  const { extra, truncated, type, ...formats } = result;
  void truncated;
  const line: Record<string, unknown> = { type, ...formats };
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (!(key in line)) line[key] = value;
  }
  return line;
}

function noCodeInterpreter(): SandpoolError {
  return new SandpoolError(
    'invalid_request',
    'This worker runs no code interpreter; create the sandbox from the code-interpreter template.',
  );
}

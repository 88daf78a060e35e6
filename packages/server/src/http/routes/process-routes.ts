import { PassThrough, type Readable } from 'node:stream';
import websocket from '@fastify/websocket';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { WebSocket } from 'ws';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type { WatchService, WatchStreamEvent } from '../../files/watch-service.js';
import type { ProcessOutputEvent, ProcessService } from '../../processes/process-service.js';
import { abortOnDisconnect } from '../client-disconnect.js';
import {
  ProcessList,
  ProcessParams,
  ProcessViewSchema,
  SignalBody,
  StartedProcessView,
  StartProcessBody,
  StdinBody,
  TerminalSizeSchema,
  WatchQuery,
} from '../process-schemas.js';
import { errorResponses, SessionParams } from '../schemas.js';
import { selectProtocol } from '../websocket-bearer.js';

const NDJSON = 'application/x-ndjson';
/** Documents a stream's body; streams are sent as they are, never serialized. */
const NdjsonLines = Type.Unsafe<Readable>({
  type: 'string',
  description: 'One JSON object a line (application/x-ndjson)',
});
/** Largest stdin body (raw or JSON) and WebSocket message. */
export const STDIN_LIMIT_BYTES = 1024 * 1024;

/** A message a terminal client sends as text; binary messages are input bytes. */
const TerminalControl = Type.Union([
  Type.Object(
    { type: Type.Literal('input'), data: Type.String({ maxLength: STDIN_LIMIT_BYTES }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('resize'),
      cols: TerminalSizeSchema.properties.cols,
      rows: TerminalSizeSchema.properties.rows,
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { type: Type.Literal('signal'), signal: SignalBody.properties.signal },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('eof') }, { additionalProperties: false }),
]);

/**
 * Writes NDJSON lines to a response stream, waiting for the client to read (a slow client holds
 * its stream back, never the process or the worker's memory).
 */
function ndjsonWriter(out: PassThrough): (event: object) => Promise<void> {
  return async (event) => {
    if (out.destroyed) return;
    if (!out.write(`${JSON.stringify(event)}\n`)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          out.off('drain', done);
          out.off('close', done);
          resolve();
        };
        out.once('drain', done);
        out.once('close', done);
      });
    }
  };
}

/** The routes of background processes, their terminals and directory watches. */
export const processRoutes: FastifyPluginAsyncTypebox<{
  processes: ProcessService;
  watches: WatchService;
}> = async (app, { processes, watches }) => {
  await app.register(websocket, {
    options: { maxPayload: STDIN_LIMIT_BYTES, handleProtocols: selectProtocol },
  });
  // stdin takes raw bytes of any type besides JSON (which the app parses).
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: STDIN_LIMIT_BYTES },
    (_request, body, done) => done(null, body),
  );

  const errors = errorResponses(400, 401, 404, 410);
  const base = '/v1/sessions/:id/processes';
  const tags = ['processes'];

  app.post(
    base,
    {
      schema: {
        tags,
        summary:
          'Start a background process (answers at once; it runs until it exits or the session ends)',
        params: SessionParams,
        body: StartProcessBody,
        response: { 201: StartedProcessView, ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const started = await processes.start(request.params.id, {
        command: body.command,
        argv: body.argv,
        cwd: body.cwd,
        env: body.env,
        tag: body.tag,
        stdin: body.stdin,
        timeoutMs: body.timeout_ms,
        pty: body.pty,
      });
      return reply.code(201).send(started);
    },
  );

  app.get(
    base,
    {
      schema: {
        tags,
        summary: 'List running and recently exited processes',
        params: SessionParams,
        response: { 200: ProcessList, ...errors },
      },
    },
    async (request) => ({ processes: processes.list(request.params.id) }),
  );

  app.get(
    `${base}/:pid`,
    {
      schema: {
        tags,
        summary: 'One process, by pid or tag',
        params: ProcessParams,
        response: { 200: ProcessViewSchema, ...errors },
      },
    },
    async (request) => processes.get(request.params.id, request.params.pid),
  );

  app.get(
    `${base}/:pid/output`,
    {
      schema: {
        tags,
        summary:
          'NDJSON: `start`, the kept output (a `truncated` line when older output was dropped), then live output, then `exit`; `?follow=false` stops after the kept output',
        params: ProcessParams,
        querystring: Type.Object(
          { follow: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) },
          { additionalProperties: false },
        ),
        response: { 200: NdjsonLines, ...errors },
      },
    },
    async (request, reply) => {
      const { id, pid } = request.params;
      processes.check(id, pid); // Fail with a status while headers can still say so.
      const signal = abortOnDisconnect(reply);
      const out = new PassThrough();
      const emit = ndjsonWriter(out);
      processes
        .follow(id, pid, (event: ProcessOutputEvent) => emit(event), signal, {
          live: request.query.follow !== 'false',
        })
        .catch(async (error: unknown) => {
          const failure =
            error instanceof SandpoolError
              ? error
              : new SandpoolError(
                  'runtime_unavailable',
                  `The output stream failed: ${String(error)}`,
                );
          await emit({ type: 'error', error: failure.toBody().error });
        })
        .finally(() => out.end());
      return reply.header('content-type', NDJSON).header('cache-control', 'no-store').send(out);
    },
  );

  app.post(
    `${base}/:pid/stdin`,
    {
      schema: {
        tags,
        summary:
          'Send input: the raw body, or JSON {"data", "eof"}; `?eof=true` closes stdin after a raw body',
        params: ProcessParams,
        querystring: Type.Object(
          { eof: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null({ description: 'Sent' }), ...errors, ...errorResponses(413) },
      },
    },
    async (request, reply) => {
      const { id, pid } = request.params;
      let data: Buffer;
      let eof = request.query.eof === 'true';
      if (Buffer.isBuffer(request.body)) {
        data = request.body;
      } else {
        if (!Value.Check(StdinBody, request.body)) {
          throw new SandpoolError(
            'invalid_request',
            'Send the input as a raw body (any content type but JSON), or JSON {"data": "...", "eof": true}.',
          );
        }
        data = Buffer.from(request.body.data ?? '', 'utf8');
        eof ||= request.body.eof === true;
      }
      processes.writeStdin(id, pid, data, eof);
      return reply.code(204).send(null);
    },
  );

  app.post(
    `${base}/:pid/signal`,
    {
      schema: {
        tags,
        summary: 'Send a signal to the process group',
        params: ProcessParams,
        body: SignalBody,
        response: { 204: Type.Null({ description: 'Sent' }), ...errors },
      },
    },
    async (request, reply) => {
      processes.signal(request.params.id, request.params.pid, request.body.signal);
      return reply.code(204).send(null);
    },
  );

  app.post(
    `${base}/:pid/resize`,
    {
      schema: {
        tags,
        summary: 'Resize the process’s terminal',
        params: ProcessParams,
        body: TerminalSizeSchema,
        response: { 204: Type.Null({ description: 'Resized' }), ...errors },
      },
    },
    async (request, reply) => {
      processes.resize(request.params.id, request.params.pid, request.body);
      return reply.code(204).send(null);
    },
  );

  app.delete(
    `${base}/:pid`,
    {
      schema: {
        tags,
        summary: 'Kill the process group; answers with the ended process',
        params: ProcessParams,
        response: { 200: ProcessViewSchema, ...errors },
      },
    },
    async (request) => processes.kill(request.params.id, request.params.pid),
  );

  // The terminal: binary messages both ways carry raw bytes; text messages are JSON control
  // (client: input, resize, signal, eof; server: truncated, exit, error).
  app.get(
    `${base}/:pid/pty`,
    {
      websocket: true,
      schema: {
        tags,
        summary:
          'WebSocket: raw bytes both ways, JSON text messages for resize/input/signal/eof and exit',
        params: ProcessParams,
      },
      // Unknown sessions and processes answer with a status before the upgrade.
      preHandler: async (request) => {
        const { id, pid } = request.params;
        processes.check(id, pid);
      },
    },
    (socket, request) => {
      const { id, pid } = request.params;
      serveTerminal(socket, processes, id, pid);
    },
  );

  app.get(
    '/v1/sessions/:id/files/watch',
    {
      schema: {
        tags: ['files'],
        summary:
          'NDJSON events (create, write, remove, rename, chmod) of a directory until the client leaves or it goes away (`end`)',
        params: SessionParams,
        querystring: WatchQuery,
        response: { 200: NdjsonLines, ...errors },
      },
    },
    async (request, reply) => {
      const out = new PassThrough();
      const emit = ndjsonWriter(out);
      const watch = await watches.watch(
        request.params.id,
        request.query.path,
        request.query.recursive === 'true',
        (event: WatchStreamEvent) => emit(event),
      );
      const signal = abortOnDisconnect(reply);
      signal.addEventListener('abort', () => watch.stop(), { once: true });
      void watch.done.finally(() => out.end());
      return reply.header('content-type', NDJSON).header('cache-control', 'no-store').send(out);
    },
  );
};

function serveTerminal(
  socket: WebSocket,
  processes: ProcessService,
  id: string,
  pid: string,
): void {
  const controller = new AbortController();
  const sendJson = (event: object) => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(event));
  };
  socket.on('close', () => controller.abort());
  socket.on('error', () => controller.abort());
  socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    try {
      if (isBinary) {
        processes.writeStdin(id, pid, bytes, false);
        return;
      }
      let message: unknown;
      try {
        message = JSON.parse(bytes.toString('utf8'));
      } catch {
        message = undefined;
      }
      if (!Value.Check(TerminalControl, message)) {
        throw new SandpoolError(
          'invalid_request',
          'Text messages are JSON: {"type":"input","data"}, {"type":"resize","cols","rows"}, {"type":"signal","signal"} or {"type":"eof"}; send raw input as binary messages.',
        );
      }
      if (message.type === 'input') processes.writeStdin(id, pid, Buffer.from(message.data), false);
      else if (message.type === 'resize') processes.resize(id, pid, message);
      else if (message.type === 'signal') processes.signal(id, pid, message.signal);
      else processes.writeStdin(id, pid, Buffer.alloc(0), true);
    } catch (error) {
      const failure =
        error instanceof SandpoolError
          ? error
          : new SandpoolError('invalid_request', String(error));
      sendJson({ type: 'error', error: failure.toBody().error });
    }
  });
  processes
    .followRaw(
      id,
      pid,
      async (event) => {
        if (socket.readyState !== socket.OPEN) return;
        if (event.type !== 'data') {
          sendJson(event);
          return;
        }
        // Waits until the bytes are handed to the socket: a slow terminal holds its own stream.
        await new Promise<void>((resolve) =>
          socket.send(event.data, { binary: true }, () => resolve()),
        );
      },
      controller.signal,
    )
    .catch((error: unknown) => {
      const failure =
        error instanceof SandpoolError
          ? error
          : new SandpoolError('runtime_unavailable', String(error));
      sendJson({ type: 'error', error: failure.toBody().error });
    })
    .finally(() => {
      if (socket.readyState === socket.OPEN) socket.close(1000, 'process ended');
    });
}

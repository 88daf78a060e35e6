import { PassThrough, Transform, type Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type { FileService } from '../../files/file-service.js';
import { errorResponses, FileList, PathQuery, SessionParams, WrittenFile } from '../schemas.js';

/** Passes bytes through until `limitBytes`, then fails with 413 instead of reading on. */
function sizeLimit(limitBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limitBytes) {
        callback(
          new SandpoolError(
            'payload_too_large',
            `The upload exceeds the limit of ${limitBytes} bytes (SANDPOOL_UPLOAD_LIMIT_BYTES).`,
          ),
        );
      } else {
        callback(null, chunk);
      }
    },
  });
}

/** Documents the download's body; streams are sent as they are, never serialized. */
const FileBytes = Type.Unsafe<Readable>({
  type: 'string',
  format: 'binary',
  description: 'The file’s bytes',
});

export const fileRoutes: FastifyPluginAsyncTypebox<{
  files: FileService;
  uploadLimitBytes: number;
}> = async (app, { files, uploadLimitBytes }) => {
  // Uploads are raw bytes of any type: hand the request stream through unparsed, never buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  const schema = { params: SessionParams, querystring: PathQuery, tags: ['files'] };
  const errors = errorResponses(400, 401, 404, 410);

  app.put(
    '/v1/sessions/:id/files',
    {
      schema: {
        ...schema,
        summary: 'Upload a file (the raw body); parents are created',
        response: { 201: WrittenFile, ...errors, ...errorResponses(413) },
      },
    },
    async (request, reply) => {
      const declared = Number(request.headers['content-length'] ?? 0);
      if (declared > uploadLimitBytes) {
        throw new SandpoolError(
          'payload_too_large',
          `The upload (${declared} bytes) exceeds the limit of ${uploadLimitBytes} bytes (SANDPOOL_UPLOAD_LIMIT_BYTES).`,
        );
      }
      const limited = request.raw.pipe(sizeLimit(uploadLimitBytes));
      request.raw.once('error', (error) => limited.destroy(error));
      const written = await files.write(request.params.id, request.query.path, limited);
      return reply.code(201).send(written);
    },
  );

  app.get(
    '/v1/sessions/:id/files',
    {
      schema: {
        ...schema,
        summary: 'Download a file, streamed',
        response: { 200: FileBytes, ...errors },
      },
    },
    async (request, reply) => {
      const file = await files.open(request.params.id, request.query.path);
      const body = new PassThrough();
      file.pipeTo(body).then(
        () => body.end(),
        (error: unknown) => {
          request.log.warn({ err: error }, 'file download failed midway');
          body.destroy(error instanceof Error ? error : new Error(String(error)));
        },
      );
      reply.header('content-type', 'application/octet-stream');
      // No Content-Length: the file may change between the stat and the read, so the bytes
      // go chunked, as read. A read that fails midway aborts the response (no final chunk),
      // so a client never takes a cut file for a whole one.
      return reply.send(body);
    },
  );

  app.get(
    '/v1/sessions/:id/files/list',
    {
      schema: {
        ...schema,
        summary: 'List a directory (413 past the listing limit)',
        response: { 200: FileList, ...errors, ...errorResponses(413) },
      },
    },
    async (request) => ({
      entries: await files.list(request.params.id, request.query.path),
    }),
  );

  app.delete(
    '/v1/sessions/:id/files',
    {
      schema: {
        ...schema,
        summary: 'Remove a file',
        response: { 204: Type.Null({ description: 'Removed' }), ...errors },
      },
    },
    async (request, reply) => {
      await files.remove(request.params.id, request.query.path);
      return reply.code(204).send(null);
    },
  );
};

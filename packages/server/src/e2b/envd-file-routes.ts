import { posix } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import multipart from '@fastify/multipart';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { SandpoolError } from '../errors/sandpool-error.js';
import { checkE2bUser } from './envd-user.js';
import type { EnvdMount } from './sandbox-scope.js';

/** envd's `EntryInfo` of the HTTP file routes. */
interface WrittenEntry {
  path: string;
  name: string;
  type: 'file';
}

const FileQuery = Type.Object(
  {
    path: Type.Optional(Type.String({ maxLength: 4096 })),
    username: Type.Optional(Type.String({ maxLength: 64 })),
    // Signed URLs (uploadUrl/downloadUrl) are not served: their URL loses the sandbox headers.
    signature: Type.Optional(Type.String({ maxLength: 256 })),
    signature_expiration: Type.Optional(Type.String({ maxLength: 32 })),
  },
  { additionalProperties: false },
);

/**
 * envd's file routes over sandpool's file service: `GET /files` streams a file out, `POST /files`
 * writes one or several (multipart, each part's file name its path unless `?path=` names the one
 * file), or one raw body (`application/octet-stream`, optionally `Content-Encoding: gzip`).
 * Paths are checked as sandpool's own file routes check them (home and /tmp only); uploads are
 * capped at the upload limit, counted after decompression, across all parts of a request.
 */
export const envdFileRoutes: EnvdMount = async (plain, { sessionOf, services }) => {
  const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
  const { files, uploadLimitBytes } = services;
  await scope.register(multipart, {
    preservePath: true,
    limits: { fileSize: uploadLimitBytes, files: 1000, fields: 100, fieldSize: 64 * 1024 },
  });
  // Raw uploads (and whatever else) pass through unparsed, never buffered.
  scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  scope.get('/files', { schema: { querystring: FileQuery } }, async (request, reply) => {
    const session = sessionOf(request);
    refuseSignature(request.query.signature);
    checkE2bUser(request.query.username);
    const file = await files.open(session.id, request.query.path ?? '');
    const body = new Transform({ transform: (chunk, _e, callback) => callback(null, chunk) });
    file.pipeTo(body).then(
      () => body.end(),
      (error: unknown) => {
        request.log.warn({ err: error }, 'E2B file download failed midway');
        body.destroy(error instanceof Error ? error : new Error(String(error)));
      },
    );
    const name = posix.basename(file.path).replace(/["\\\r\n]/g, '_');
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-disposition', `inline; filename="${name}"`)
      .send(body);
  });

  scope.post('/files', { schema: { querystring: FileQuery } }, async (request, reply) => {
    const session = sessionOf(request);
    refuseSignature(request.query.signature);
    checkE2bUser(request.query.username);
    const declared = Number(request.headers['content-length'] ?? 0);
    const encoding = (request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (declared > uploadLimitBytes && encoding === 'identity') throw tooLarge(uploadLimitBytes);
    const budget = { left: uploadLimitBytes };
    const written: WrittenEntry[] = [];
    const write = async (path: string | undefined, content: Readable) => {
      const limited = capped(budget, uploadLimitBytes);
      content.once('error', (error) => limited.destroy(error));
      const { path: absolute } = await files.write(session.id, path ?? '', content.pipe(limited));
      written.push({ path: absolute, name: posix.basename(absolute), type: 'file' });
    };

    if (request.isMultipart()) {
      if (encoding !== 'identity')
        throw new SandpoolError('invalid_request', 'A multipart upload cannot be compressed.');
      for await (const part of request.parts()) {
        if (part.type !== 'file') continue;
        if (request.query.path !== undefined && written.length > 0)
          throw new SandpoolError(
            'invalid_request',
            '?path= names one file, but the form has several: leave path out and name each file by its part’s file name.',
          );
        await write(request.query.path ?? part.filename, part.file);
        if (part.file.truncated) throw tooLarge(uploadLimitBytes);
      }
    } else {
      if (request.query.path === undefined)
        throw new SandpoolError(
          'invalid_request',
          'A raw upload needs ?path=<file>; several files go as multipart/form-data.',
        );
      const raw = request.body as Readable;
      await write(request.query.path, decoded(raw, encoding));
    }
    if (written.length === 0)
      throw new SandpoolError('invalid_request', 'The form holds no file part named "file".');
    return reply.code(200).send(written);
  });
};

function refuseSignature(signature: string | undefined): void {
  if (signature !== undefined)
    throw new SandpoolError(
      'invalid_request',
      'Signed file URLs (uploadUrl/downloadUrl) are not supported by sandpool: use files.read/files.write, which send the access token.',
    );
}

function decoded(body: Readable, encoding: string): Readable {
  if (encoding === 'identity') return body;
  if (encoding === 'gzip' || encoding === 'x-gzip') {
    const gunzip = createGunzip();
    body.once('error', (error) => gunzip.destroy(error));
    gunzip.once('error', () => body.resume());
    return body.pipe(gunzip);
  }
  throw new SandpoolError(
    'invalid_request',
    `Content-Encoding ${encoding} is not supported; send identity or gzip.`,
  );
}

/** Passes bytes through while the request's budget lasts, then fails with 413. */
function capped(budget: { left: number }, limitBytes: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      budget.left -= chunk.length;
      if (budget.left < 0) callback(tooLarge(limitBytes));
      else callback(null, chunk);
    },
  });
}

function tooLarge(limitBytes: number): SandpoolError {
  return new SandpoolError(
    'payload_too_large',
    `The upload exceeds the limit of ${limitBytes} bytes (SANDPOOL_UPLOAD_LIMIT_BYTES).`,
  );
}

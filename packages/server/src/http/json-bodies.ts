import type { FastifyInstance } from 'fastify';
import { SandpoolError } from '../errors/sandpool-error.js';

/**
 * JSON bodies the way clients send them. An empty body means "no options", whatever its
 * Content-Type: `curl -X POST .../create_session` and `hey -m POST` (which says `text/html`) both
 * create a session, as in the seed. A non-empty body must be JSON and say so: a page on another
 * site can send `text/plain` or a form without asking first, never `application/json`.
 */
export function installJsonBodies(app: FastifyInstance): void {
  // Fastify's own parsers go too: its text/plain one would hand a string to the JSON schemas.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) =>
    parseJson(String(body), done),
  );
  // Every other type: fine when empty, refused (400, with what to send instead) when not. A
  // body with no type at all comes from a program, not a page: it is read as JSON.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    if (bytes.length === 0) return done(null, undefined);
    const type = request.headers['content-type'];
    if (type === undefined || type.trim() === '') return parseJson(bytes.toString('utf8'), done);
    done(
      new SandpoolError(
        'invalid_request',
        `Unsupported Content-Type ${type} for a body: send JSON with "Content-Type: application/json" (or no body at all for no options).`,
      ),
      undefined,
    );
  });
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.method === 'POST') request.body = {};
  });
}

function parseJson(text: string, done: (error: Error | null, body?: unknown) => void): void {
  if (text.trim() === '') return done(null, undefined);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return done(new SandpoolError('invalid_request', 'The body is not valid JSON.'), undefined);
  }
  done(null, parsed);
}

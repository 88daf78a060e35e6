import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { SandpoolError } from '../errors/sandpool-error.js';
import { installErrorHandling } from './error-handler.js';

async function appThrowing(error: unknown) {
  const lines: string[] = [];
  const log: FastifyBaseLogger = pino(
    { level: 'info' },
    { write: (line: string) => lines.push(line) },
  );
  const app = Fastify({ loggerInstance: log });
  installErrorHandling(app);
  app.get('/boom', async () => {
    throw error;
  });
  await app.ready();
  const logged = () =>
    lines.map((line) => JSON.parse(line) as { level: number; err?: { stack?: string } });
  return { app, logged };
}

describe('error handling', () => {
  it('an unexpected error is 500 internal_error, logged with its stack, never Retry-After', async () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'id')");
    const { app, logged } = await appThrowing(bug);
    const answer = await app.inject({ method: 'GET', url: '/boom' });
    assert.equal(answer.statusCode, 500);
    assert.equal(answer.headers['retry-after'], undefined);
    const body = answer.json<{ error: { code: string; message: string } }>();
    assert.equal(body.error.code, 'internal_error');
    assert.match(body.error.message, /a bug in sandpool/);
    assert.match(body.error.message, /reading 'id'/);
    assert.doesNotMatch(answer.body, /at .*\.ts:\d+/, 'no stack for the client');
    const entry = logged().find((l) => l.level === 50); // pino's "error"
    assert.match(entry?.err?.stack ?? '', /TypeError: Cannot read properties[^]*\n\s+at /);
    await app.close();
  });

  it('errors meant for the client keep their code, status and Retry-After', async () => {
    const { app } = await appThrowing(
      new SandpoolError('capacity_exhausted', 'This worker is full; retry.', 2),
    );
    const answer = await app.inject({ method: 'GET', url: '/boom' });
    assert.equal(answer.statusCode, 503);
    assert.equal(answer.headers['retry-after'], '2');
    assert.equal(answer.json<{ error: { code: string } }>().error.code, 'capacity_exhausted');
    await app.close();
  });

  it('a client error Fastify raises is a 400, not a 5xx', async () => {
    const error = Object.assign(new Error('Unsupported Media Type'), {
      statusCode: 415,
      code: 'FST_ERR_SOMETHING_NEW',
    });
    const { app } = await appThrowing(error);
    const answer = await app.inject({ method: 'GET', url: '/boom' });
    assert.equal(answer.statusCode, 400);
    assert.equal(answer.json<{ error: { code: string } }>().error.code, 'invalid_request');
    await app.close();
  });
});

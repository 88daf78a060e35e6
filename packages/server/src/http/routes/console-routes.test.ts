import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { installErrorHandling } from '../error-handler.js';
import { consoleRoutes, isConsoleRoute } from './console-routes.js';

async function appWith(apiKey: string | undefined, assetsDir: string | undefined) {
  const app = Fastify();
  installErrorHandling(app);
  await app.register(consoleRoutes, { apiKey, assetsDir });
  return app;
}

test('without an API key the page is served to loopback clients only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'console-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'index.html'), '<!doctype html><title>console</title>');
  const app = await appWith(undefined, dir);
  t.after(() => app.close());

  const local = await app.inject({ url: '/ui/', remoteAddress: '127.0.0.1' });
  assert.equal(local.statusCode, 200);
  assert.match(local.body, /<title>console<\/title>/);
  assert.match(String(local.headers['content-security-policy']), /connect-src 'self'/);
  assert.equal(local.headers['x-content-type-options'], 'nosniff');
  const v6 = await app.inject({ url: '/ui/', remoteAddress: '::1' });
  assert.equal(v6.statusCode, 200);
  const redirect = await app.inject({ url: '/ui', remoteAddress: '127.0.0.1' });
  assert.deepEqual([redirect.statusCode, redirect.headers.location], [302, '/ui/']);

  const remote = await app.inject({ url: '/ui/', remoteAddress: '192.0.2.7' });
  assert.equal(remote.statusCode, 403);
  const body = remote.json<{ error: { code: string; message: string } }>();
  assert.equal(body.error.code, 'forbidden_origin');
  assert.match(body.error.message, /--api-key/);
});

test('with an API key anyone who reaches the server gets the page (it asks for the key)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'console-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'index.html'), 'page');
  const app = await appWith('k', dir);
  t.after(() => app.close());
  const remote = await app.inject({ url: '/ui/', remoteAddress: '192.0.2.7' });
  assert.deepEqual([remote.statusCode, remote.body], [200, 'page']);
});

test('a server whose console is not built says how to build it', async (t) => {
  const app = await appWith(undefined, undefined);
  t.after(() => app.close());
  const answer = await app.inject({ url: '/ui/', remoteAddress: '127.0.0.1' });
  assert.equal(answer.statusCode, 404);
  assert.match(answer.json<{ error: { message: string } }>().error.message, /npm run build/);
});

test('the console routes are told apart from the API', () => {
  assert.ok(isConsoleRoute('/ui'));
  assert.ok(isConsoleRoute('/ui/*'));
  assert.ok(!isConsoleRoute('/uix'));
  assert.ok(!isConsoleRoute('/v1/sessions'));
});

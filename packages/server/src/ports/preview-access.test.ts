import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import {
  checkPreviewSignature,
  PREVIEW_LOG_REDACTION,
  readCookie,
  redactPreviewToken,
  signPreview,
  withoutCookie,
} from './preview-access.js';
import { parsePreviewHost, previewHost } from './preview-host.js';

describe('preview hosts', () => {
  test('reads {port}-{session id}.{domain}[:port], and nothing else', () => {
    assert.deepEqual(parsePreviewHost('8000-sb_ab12.localhost:8080', 'localhost'), {
      port: 8000,
      sessionId: 'sb_ab12',
    });
    assert.deepEqual(parsePreviewHost('3000-SB_AB.Preview.Example.com', 'preview.example.com'), {
      port: 3000,
      sessionId: 'sb_ab',
    });
    for (const host of [
      'localhost:8080',
      '127.0.0.1:8080',
      '8000-sb_x.evil.com',
      '70000-sb_x.localhost',
      '0-sb_x.localhost',
      'a.8000-sb_x.localhost',
      '8000-.localhost',
      undefined,
    ]) {
      assert.equal(parsePreviewHost(host, 'localhost'), undefined, String(host));
    }
    assert.equal(
      previewHost({ port: 8000, sessionId: 'sb_1' }, 'localhost', '8080'),
      '8000-sb_1.localhost:8080',
    );
    assert.equal(previewHost({ port: 80, sessionId: 'sb_1' }, 'x.dev', ''), '80-sb_1.x.dev');
  });
});

describe('signed preview URLs', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const exp = now / 1000 + 60;

  test('valid for its session, port and lifetime only', () => {
    const token = signPreview('secret', 'sb_1', 8000, exp);
    assert.ok(checkPreviewSignature(token, 'secret', 'sb_1', 8000, now));
    assert.ok(!checkPreviewSignature(token, 'secret', 'sb_1', 8000, now + 60_000));
    assert.ok(!checkPreviewSignature(token, 'secret', 'sb_2', 8000, now));
    assert.ok(!checkPreviewSignature(token, 'secret', 'sb_1', 8001, now));
    assert.ok(!checkPreviewSignature(token, 'other', 'sb_1', 8000, now));
    const [, mac] = token.split('.');
    // A later expiry with the same mac is refused.
    assert.ok(!checkPreviewSignature(`${exp + 3600}.${mac}`, 'secret', 'sb_1', 8000, now));
    assert.ok(!checkPreviewSignature('garbage', 'secret', 'sb_1', 8000, now));
  });

  test('cookies: read ours, pass the rest on', () => {
    assert.equal(readCookie('a=1; sandpool_preview=t.x; b=2', 'sandpool_preview'), 't.x');
    assert.equal(readCookie('a=1', 'sandpool_preview'), undefined);
    assert.equal(withoutCookie('a=1; sandpool_preview=t.x; b=2', 'sandpool_preview'), 'a=1; b=2');
    assert.equal(withoutCookie('sandpool_preview=t.x', 'sandpool_preview'), undefined);
  });

  test('tokens never reach a log', () => {
    const lines: string[] = [];
    const log = pino(
      { redact: PREVIEW_LOG_REDACTION },
      new Writable({
        write(chunk: Buffer, _e, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    log.info({ url: '/x?a=1&sandpool_preview_token=123.secretmac&b=2' }, 'request');
    log.info(
      {
        req: {
          url: '/?sandpool_preview_token=9.s',
          headers: { 'x-access-token': 'tok', cookie: 'c' },
        },
      },
      'request',
    );
    const text = lines.join('');
    assert.doesNotMatch(text, /secretmac|9\.s|tok"|"c"/);
    assert.match(text, /a=1&sandpool_preview_token=\[redacted\]&b=2/);
    assert.equal(redactPreviewToken(42), 42);
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import {
  bearerFromProtocols,
  CONSOLE_PROTOCOL,
  CREDENTIAL_LOG_PATHS,
  selectProtocol,
} from './websocket-bearer.js';

const offer = (key: string) =>
  `${CONSOLE_PROTOCOL}, sandpool.bearer.${Buffer.from(key).toString('base64url')}`;

test('reads the key the console offers as a subprotocol', () => {
  assert.equal(bearerFromProtocols(offer('s3cret/+=key')), 'Bearer s3cret/+=key');
  assert.equal(bearerFromProtocols(CONSOLE_PROTOCOL), undefined);
  assert.equal(bearerFromProtocols(undefined), undefined);
  assert.equal(bearerFromProtocols('sandpool.bearer.not base64!'), undefined);
});

test('selects the console protocol, never the one carrying the key', () => {
  assert.equal(selectProtocol(new Set(offer('k').split(', '))), CONSOLE_PROTOCOL);
  assert.equal(selectProtocol(new Set(['sandpool.bearer.aw'])), false);
});

test('a log line that carried the headers would not carry the key', () => {
  let written = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written += chunk.toString();
      done();
    },
  });
  const log = pino({ redact: CREDENTIAL_LOG_PATHS }, sink);
  const headers = { authorization: 'Bearer s3cret', 'sec-websocket-protocol': offer('s3cret') };
  log.info({ req: { headers } }, 'request');
  log.info({ headers }, 'upgrade');
  assert.doesNotMatch(written, /s3cret|c2VjcmV0|czNjcmV0/);
  assert.match(written, /\[Redacted\]/);
});

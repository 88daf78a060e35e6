import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bearerFromProtocols, CONSOLE_PROTOCOL, selectProtocol } from './websocket-bearer.js';

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

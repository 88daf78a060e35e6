import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CredentialRules } from './credential-rules.js';

describe('CredentialRules', () => {
  it('expands secrets from the environment and files, per destination', () => {
    const dir = mkdtempSync(join(tmpdir(), 'creds-'));
    writeFileSync(join(dir, 'key'), 'from-file\n');
    const rules = CredentialRules.fromJson(
      JSON.stringify([
        { host: 'api.github.com', headers: { Authorization: 'Bearer ${env:GH}' } },
        { host: '*.example.com:8443', headers: { 'X-Key': '${file:' + join(dir, 'key') + '}' } },
      ]),
      { GH: 'ghp_secret' },
    );
    assert.deepEqual(rules.headersFor('api.github.com', 443), {
      authorization: 'Bearer ghp_secret',
    });
    assert.equal(rules.headersFor('api.github.com', 8080), undefined);
    assert.deepEqual(rules.headersFor('a.example.com', 8443), { 'x-key': 'from-file' });
    assert.equal(rules.headersFor('example.com', 8443), undefined);
    assert.deepEqual(rules.secrets().sort(), ['Bearer ghp_secret', 'from-file']);
  });

  it('refuses unset variables, bad header names and line breaks', () => {
    assert.throws(
      () => CredentialRules.fromJson('[{"host":"a.com","headers":{"A":"${env:NOPE}"}}]', {}),
      /NOPE is unset/,
    );
    assert.throws(
      () => CredentialRules.fromJson('[{"host":"a.com","headers":{"A B":"x"}}]', {}),
      /token/,
    );
    assert.throws(
      () =>
        CredentialRules.fromJson('[{"host":"a.com","headers":{"A":"${env:V}"}}]', {
          V: 'x\r\nY: z',
        }),
      /line break/,
    );
    assert.throws(() => CredentialRules.fromJson('{}', {}), /array/);
  });
});

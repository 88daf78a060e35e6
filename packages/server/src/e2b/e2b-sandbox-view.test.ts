import { test } from 'node:test';
import assert from 'node:assert/strict';
import { domainFor, e2bSandboxOf, sandpoolTemplateOf } from './e2b-sandbox-view.js';

test('E2B template names map to sandpool’s', () => {
  assert.equal(sandpoolTemplateOf('code-interpreter-v1'), 'code-interpreter');
  assert.equal(sandpoolTemplateOf('base'), 'base');
  assert.equal(sandpoolTemplateOf('mine'), 'mine');
});

test('the domain is the preview domain with the port the client called', () => {
  assert.equal(domainFor('localhost', '127.0.0.1:5000'), 'localhost:5000');
  assert.equal(domainFor('sandbox.example.com', 'sandbox.example.com'), 'sandbox.example.com');
  assert.equal(domainFor('localhost', '[::1]:8000'), 'localhost:8000');
  assert.equal(domainFor('localhost', undefined), 'localhost');
});

test('create answers carry the session’s token as both envd and traffic token', () => {
  const sandbox = e2bSandboxOf(
    {
      session_id: 's1',
      worker_id: 'w1',
      template: 'base',
      created_at: '2026-01-01T00:00:00Z',
      expires_at: '2026-01-01T00:05:00Z',
      metadata: {},
      access_token: 'secret',
    },
    { domain: 'localhost:5000' },
  );
  assert.equal(sandbox.envdAccessToken, 'secret');
  assert.equal(sandbox.trafficAccessToken, 'secret');
  assert.equal(sandbox.sandboxID, 's1');
  assert.equal(sandbox.domain, 'localhost:5000');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2bBanner } from './e2b-banner.js';

test('the banner names the three variables for this server', () => {
  const banner = e2bBanner('http://127.0.0.1:5000/', false);
  assert.match(banner, /E2B_API_URL=http:\/\/127\.0\.0\.1:5000\/e2b$/m);
  assert.match(banner, /E2B_SANDBOX_URL=http:\/\/127\.0\.0\.1:5000\/e2b\/sandbox$/m);
  assert.match(banner, /E2B_API_KEY=any-value$/m);
  assert.match(e2bBanner('http://h:8000', true), /E2B_API_KEY=<SANDPOOL_API_KEY>$/m);
});

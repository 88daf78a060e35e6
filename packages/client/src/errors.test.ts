import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AuthError,
  CapacityError,
  ConnectionError,
  errorFromResponse,
  FileNotFoundError,
  InternalError,
  ForbiddenOriginError,
  EgressNotPermittedError,
  InvalidPathError,
  InvalidRequestError,
  parseRetryAfterMs,
  PayloadTooLargeError,
  RuntimeUnavailableError,
  SandboxError,
  SessionLostError,
  SessionNotFoundError,
} from './errors.js';

function answer(status: number, code: string, retryAfter: string | null = null): SandboxError {
  return errorFromResponse({
    status,
    bodyText: JSON.stringify({ error: { code, message: `about ${code}` } }),
    retryAfter,
    request: 'GET http://x/v1/sessions/s',
  });
}

describe('errorFromResponse', () => {
  it('maps every API error code to its subclass, keeping code, status and message', () => {
    const cases: [number, string, new (...args: never[]) => SandboxError][] = [
      [400, 'invalid_request', InvalidRequestError],
      [400, 'invalid_path', InvalidPathError],
      [401, 'unauthorized', AuthError],
      [404, 'session_not_found', SessionNotFoundError],
      [404, 'file_not_found', FileNotFoundError],
      [410, 'session_lost', SessionLostError],
      [413, 'payload_too_large', PayloadTooLargeError],
      [503, 'capacity_exhausted', CapacityError],
      [503, 'runtime_unavailable', RuntimeUnavailableError],
      [500, 'internal_error', InternalError],
      [403, 'forbidden_origin', ForbiddenOriginError],
      [403, 'egress_not_permitted', EgressNotPermittedError],
    ];
    for (const [status, code, type] of cases) {
      const error = answer(status, code);
      assert.ok(error instanceof type, code);
      assert.ok(error instanceof SandboxError);
      assert.equal(error.code, code);
      assert.equal(error.status, status);
      assert.equal(error.message, `about ${code}`);
      assert.equal(error.name, type.name);
    }
  });

  it('reads Retry-After into retryAfterMs', () => {
    const error = answer(503, 'capacity_exhausted', '2');
    assert.ok(error instanceof CapacityError);
    assert.equal(error.retryAfterMs, 2000);
  });

  it('falls back on the status when the body is not the API shape', () => {
    const parts = { bodyText: '<html>Bad Gateway</html>', retryAfter: null, request: 'GET u' };
    assert.ok(errorFromResponse({ ...parts, status: 401 }) instanceof AuthError);
    assert.ok(errorFromResponse({ ...parts, status: 413 }) instanceof PayloadTooLargeError);
    assert.ok(errorFromResponse({ ...parts, status: 503 }) instanceof RuntimeUnavailableError);
    assert.ok(errorFromResponse({ ...parts, status: 500 }) instanceof InternalError);
    const busy = errorFromResponse({ ...parts, status: 503, retryAfter: '1' });
    assert.ok(busy instanceof CapacityError);
    const other = errorFromResponse({ ...parts, status: 502 });
    assert.equal(other.code, 'http_error');
    assert.equal(other.status, 502);
    assert.match(other.message, /GET u answered 502: <html>Bad Gateway<\/html>/);
  });

  it('keeps an unknown code from a newer server as a base SandboxError', () => {
    const error = answer(429, 'rate_limited');
    assert.equal(error.constructor, SandboxError);
    assert.equal(error.code, 'http_error');
    assert.match(error.message, /answered 429: about rate_limited/);
  });
});

describe('parseRetryAfterMs', () => {
  it('reads seconds and HTTP dates, and ignores the rest', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfterMs('3', now), 3000);
    assert.equal(parseRetryAfterMs('0.5', now), 500);
    assert.equal(parseRetryAfterMs('Wed, 01 Jan 2025 00:00:10 GMT', now), 10_000);
    assert.equal(parseRetryAfterMs('Tue, 31 Dec 2024 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfterMs(null, now), undefined);
    assert.equal(parseRetryAfterMs('soon', now), undefined);
  });
});

describe('ConnectionError', () => {
  it('names the URL and how to start a worker', () => {
    const error = new ConnectionError('http://127.0.0.1:5999/health', 'ECONNREFUSED');
    assert.equal(error.code, 'connection_failed');
    assert.equal(error.status, undefined);
    assert.equal(error.url, 'http://127.0.0.1:5999/health');
    assert.match(error.message, /127\.0\.0\.1:5999.*ECONNREFUSED.*npx sandpool serve/);
  });
});

import { createHmac, timingSafeEqual, createHash } from 'node:crypto';
import { SandpoolError } from '../errors/sandpool-error.js';

/** The cookie a signed URL sets (host-only: it belongs to that one preview host). */
export const PREVIEW_COOKIE = 'sandpool_preview';
/** The query parameter of a signed URL. */
export const PREVIEW_QUERY = 'sandpool_preview_token';
/** Headers that carry the session's access token (sandpool's, and E2B's for traffic). */
export const ACCESS_TOKEN_HEADERS = ['x-access-token', 'e2b-traffic-access-token'] as const;

/** Longest life of a signed URL (and its cookie). */
export const MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600;

/**
 * Signed preview URLs: an HMAC of session, port and expiry, keyed by the session's access token,
 * so any server that knows the session (its worker, a coordinator) can check one, and a session's
 * URLs die with it. `{expiry seconds}.{mac}`.
 */
export function signPreview(
  accessToken: string,
  sessionId: string,
  port: number,
  expiresAtSeconds: number,
): string {
  return `${expiresAtSeconds}.${mac(accessToken, sessionId, port, expiresAtSeconds)}`;
}

/** Whether `token` is a signature of this session and port that has not expired at `nowMs`. */
export function checkPreviewSignature(
  token: string,
  accessToken: string,
  sessionId: string,
  port: number,
  nowMs: number,
): boolean {
  const match = /^([0-9]{1,12})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (match === null) return false;
  const expires = Number(match[1]);
  if (expires * 1000 <= nowMs) return false;
  return sameSecret(match[2], mac(accessToken, sessionId, port, expires));
}

/** Constant-time equality of two secrets (hashed first, so lengths do not show). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function mac(accessToken: string, sessionId: string, port: number, expires: number): string {
  return createHmac('sha256', accessToken)
    .update(`sandpool-preview:${sessionId}:${port}:${expires}`)
    .digest('base64url');
}

/** What a preview request carries to prove access. */
export interface PreviewCredentials {
  /** X-Access-Token / e2b-traffic-access-token. */
  header?: string;
  /** The signed URL's query parameter. */
  query?: string;
  /** The cookie a signed URL set. */
  cookie?: string;
}

/** The refusal of a private preview request without valid credentials. */
export function previewUnauthorized(port: number): SandpoolError {
  return new SandpoolError(
    'unauthorized',
    `Port ${port} of this session is private: send the session's access token in X-Access-Token (or e2b-traffic-access-token), open a signed URL from POST /v1/sessions/{id}/ports/${port}/url, or make the port public with PUT /v1/sessions/{id}/ports/${port} {"public": true}.`,
  );
}

/** Reads one cookie from a Cookie header; undefined when absent. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Cookie header without our cookie (the server in the sandbox never sees it). */
export function withoutCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const kept = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '' && p.slice(0, p.indexOf('=')).trim() !== name);
  return kept.length === 0 ? undefined : kept.join('; ');
}

/** A URL as it may be logged: a signed URL's token replaced. */
export function redactPreviewToken(url: unknown): unknown {
  return typeof url === 'string'
    ? url.replace(new RegExp(`([?&]${PREVIEW_QUERY}=)[^&#]*`, 'g'), '$1[redacted]')
    : url;
}

/**
 * pino's `redact` setting for the worker's and coordinator's loggers: preview credentials (the
 * access token headers, the signed URL's query, the cookie) never reach a log.
 */
export const PREVIEW_LOG_REDACTION = {
  paths: [
    'url',
    'req.url',
    'req.headers["x-access-token"]',
    'req.headers["e2b-traffic-access-token"]',
    'req.headers.cookie',
    'req.headers.authorization',
    'headers["x-access-token"]',
    'headers["e2b-traffic-access-token"]',
    'headers.cookie',
  ],
  censor: (value: unknown, path: string[]): unknown =>
    path[path.length - 1] === 'url' ? redactPreviewToken(value) : '[redacted]',
};

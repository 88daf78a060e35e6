import { SandpoolError } from '../errors/sandpool-error.js';

/** Bounds of a request's `timeout_ms`, shared by commands and code cells. */
export interface TimeoutLimits {
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
}

/** The timeout a request gets: its own, checked against the maximum, or the default. */
export function resolveTimeoutMs(requested: number | undefined, limits: TimeoutLimits): number {
  const timeoutMs = requested ?? limits.defaultTimeoutMs;
  if (timeoutMs < 1 || timeoutMs > limits.maxTimeoutMs) {
    throw new SandpoolError(
      'invalid_request',
      `timeout_ms must be from 1 to ${limits.maxTimeoutMs}, got ${timeoutMs}.`,
    );
  }
  return timeoutMs;
}

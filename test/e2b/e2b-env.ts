import { until } from '../support/until.js';

/**
 * Points the published E2B SDKs at a sandpool server the way a user does: the three variables
 * the start-up banner prints, and nothing else.
 */
export function useE2bServer(serverUrl: string, apiKey: string): void {
  process.env.E2B_API_URL = `${serverUrl}/e2b`;
  process.env.E2B_SANDBOX_URL = `${serverUrl}/e2b/sandbox`;
  process.env.E2B_API_KEY = apiKey;
}

/** Polls `check` (sync or async) until it holds, for up to 15 s. */
export const eventually = (check: () => boolean | Promise<boolean>, what: string) =>
  until(async () => check(), 15_000, what);

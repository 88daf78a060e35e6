import { E2B_PREFIX, E2B_SANDBOX_PREFIX } from './e2b-face.js';

/**
 * The start-up lines that tell E2B users what to set: with these three variables the published
 * `e2b` and `@e2b/code-interpreter` SDKs talk to this server unchanged.
 */
export function e2bBanner(url: string, hasApiKey: boolean): string {
  const base = url.replace(/\/+$/, '');
  const key = hasApiKey ? '<SANDPOOL_API_KEY>' : 'any-value';
  return [
    'E2B SDKs: set',
    `  E2B_API_URL=${base}${E2B_PREFIX}`,
    `  E2B_SANDBOX_URL=${base}${E2B_SANDBOX_PREFIX}`,
    `  E2B_API_KEY=${key}`,
  ].join('\n');
}

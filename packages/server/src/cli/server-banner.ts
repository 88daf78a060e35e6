import { e2bBanner } from '../e2b/e2b-banner.js';

/**
 * What a worker or coordinator prints once it listens: its own line, then how to reach it from
 * E2B's SDKs and the console. One write, so whoever waits for the first line sees them all.
 */
export function serverBanner(listening: string, url: string, hasApiKey: boolean): string {
  return `${listening}\n${e2bBanner(url, hasApiKey)}\nconsole: ${url}/ui/\n`;
}

import { createHash, timingSafeEqual } from 'node:crypto';
import { SandpoolError } from '../errors/sandpool-error.js';

/**
 * Checks `Authorization: Bearer <key>` in constant time. Both sides are hashed first so the
 * comparison takes the same time whatever the length of what the client sent.
 */
export function createBearerCheck(apiKey: string): (header: string | undefined) => void {
  const expected = createHash('sha256').update(apiKey).digest();
  return (header) => {
    const match = /^Bearer (.+)$/.exec(header ?? '');
    const given = createHash('sha256')
      .update(match?.[1] ?? '')
      .digest();
    if (!match || !timingSafeEqual(given, expected)) {
      throw new SandpoolError(
        'unauthorized',
        'Missing or wrong API key; send "Authorization: Bearer <SANDPOOL_API_KEY>".',
      );
    }
  };
}

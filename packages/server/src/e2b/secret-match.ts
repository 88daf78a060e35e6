import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Whether a secret a client sent equals the expected one, in constant time: both are hashed first,
 * so the time taken says nothing about the length or the first wrong byte.
 */
export function secretMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined || given === '') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

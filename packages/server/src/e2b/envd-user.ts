import { SandpoolError } from '../errors/sandpool-error.js';

/**
 * The sandbox user an E2B request names. A sandpool sandbox has one user (uid 1000): E2B's `user`
 * (its default) and `root` both mean it, so `root` gets no more rights than `user` (docs/e2b.md).
 */
export function checkE2bUser(username: string | undefined): void {
  if (username === undefined || username === '' || username === 'user' || username === 'root')
    return;
  if (username === 'sandboxuser') return;
  throw new SandpoolError(
    'invalid_request',
    `Unknown user "${username}": a sandpool sandbox has one user; use "user" (the default).`,
  );
}

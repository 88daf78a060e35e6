import { SandpoolError } from '../errors/sandpool-error.js';

/** The names E2B's SDK may send for a sandbox's default user; all are sandpool's sandbox user. */
const SANDBOX_USER_NAMES = new Set(['', 'user', 'sandboxuser']);

/**
 * What is wrong with the user an E2B request asks to act as, or undefined when it is the sandbox
 * user. Every sandpool sandbox runs its processes and file operations as the unprivileged sandbox
 * user (uid 1000) with no way to become root, so `root` (or any other name) is refused, saying so,
 * instead of silently acting as someone else. Shared by envd's HTTP routes and its Connect RPCs.
 */
export function sandboxUserProblem(name: string | undefined): string | undefined {
  if (name === undefined || SANDBOX_USER_NAMES.has(name)) return undefined;
  return `sandpool runs everything in a sandbox as the unprivileged user "sandboxuser" (uid 1000) and cannot act as "${name.slice(0, 64)}"; leave out the user option or pass user: 'user'.`;
}

/** `sandboxUserProblem` for envd's HTTP routes (`?username=`): 400 invalid_request. */
export function checkE2bUser(username: string | undefined): void {
  const problem = sandboxUserProblem(username);
  if (problem !== undefined) throw new SandpoolError('invalid_request', problem);
}

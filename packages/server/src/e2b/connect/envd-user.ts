import { Code, ConnectError } from '@connectrpc/connect';

/** The names envd accepts for the sandbox's default user; all run as sandpool's sandbox user. */
const SANDBOX_USER_NAMES = new Set(['user', 'sandboxuser']);

/**
 * Checks the user an envd request asks to run as (`Authorization: Basic base64("name:")`, what
 * the e2b SDK sends for `user: 'user' | 'root'`). Every sandpool sandbox runs its processes and
 * file operations as the unprivileged sandbox user (uid 1000) with no way to become root, so
 * `root` (or any other name) is refused, saying so, instead of silently running as someone else.
 */
export function checkEnvdUser(authorization: string | null | undefined): void {
  if (authorization === null || authorization === undefined || authorization === '') return;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization.trim());
  if (!match?.[1]) return; // not envd's user header (a bearer key for the API): no user asked
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const name = decoded.includes(':') ? decoded.slice(0, decoded.indexOf(':')) : decoded;
  if (name === '' || SANDBOX_USER_NAMES.has(name)) return;
  throw new ConnectError(
    `invalid_request: sandpool runs everything in a sandbox as the unprivileged user "sandboxuser" (uid 1000) and cannot run as "${name.slice(0, 64)}"; leave out the user option or pass user: 'user'.`,
    Code.InvalidArgument,
  );
}

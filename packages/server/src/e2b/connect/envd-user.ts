import { Code, ConnectError } from '@connectrpc/connect';
import { sandboxUserProblem } from '../envd-user.js';

/**
 * Checks the user an envd request asks to run as (`Authorization: Basic base64("name:")`, what
 * the e2b SDK sends for `user: 'user' | 'root'`): see `sandboxUserProblem`.
 */
export function checkEnvdUser(authorization: string | null | undefined): void {
  if (authorization === null || authorization === undefined || authorization === '') return;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization.trim());
  if (!match?.[1]) return; // not envd's user header (a bearer key for the API): no user asked
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const name = decoded.includes(':') ? decoded.slice(0, decoded.indexOf(':')) : decoded;
  const problem = sandboxUserProblem(name);
  if (problem !== undefined)
    throw new ConnectError(`invalid_request: ${problem}`, Code.InvalidArgument);
}

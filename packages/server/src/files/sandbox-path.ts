import { posix } from 'node:path';
import { SandpoolError } from '../errors/sandpool-error.js';
import { E2B_HOME_ALIAS, SANDBOX_HOME, WRITABLE_ROOTS } from '../runtime/sandbox-layout.js';

// Defined by the runtime, which mounts them; re-exported for the services that resolve paths.
export { SANDBOX_HOME, WRITABLE_ROOTS };

const MAX_PATH_BYTES = 4096;

/**
 * Resolves a client's path to an absolute one inside the sandbox's writable roots. Relative paths
 * are under the home. Throws `invalid_path` for empty paths, NUL bytes, and anything that escapes.
 */
export function resolveSandboxPath(raw: string | undefined, { allowRoot = true } = {}): string {
  if (raw === undefined || raw.length === 0) {
    throw invalidPath(
      'The path is empty; pass ?path=<file>, relative to /home/sandboxuser or absolute under it or /tmp.',
    );
  }
  if (raw.includes('\0')) throw invalidPath('The path contains a NUL byte.');
  if (Buffer.byteLength(raw) > MAX_PATH_BYTES)
    throw invalidPath(`The path is longer than ${MAX_PATH_BYTES} bytes.`);
  const absolute = withoutHomeAlias(
    posix.normalize(raw.startsWith('/') ? raw : `${SANDBOX_HOME}/${raw}`).replace(/(.)\/+$/, '$1'),
  );
  const root = WRITABLE_ROOTS.find((r) => absolute === r || absolute.startsWith(`${r}/`));
  if (!root) {
    throw invalidPath(
      `${raw} resolves to ${absolute}, outside the sandbox's writable roots (${WRITABLE_ROOTS.join(', ')}).`,
    );
  }
  if (!allowRoot && absolute === root)
    throw invalidPath(`${absolute} is a root of the sandbox and cannot be the target here.`);
  return absolute;
}

/** `/home/user[/…]` (E2B's home, a symlink in every sandbox) as the path it stands for. */
function withoutHomeAlias(absolute: string): string {
  if (absolute === E2B_HOME_ALIAS) return SANDBOX_HOME;
  if (absolute.startsWith(`${E2B_HOME_ALIAS}/`))
    return SANDBOX_HOME + absolute.slice(E2B_HOME_ALIAS.length);
  return absolute;
}

function invalidPath(message: string): SandpoolError {
  return new SandpoolError('invalid_path', message);
}

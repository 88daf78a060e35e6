/**
 * Where things are inside every sandbox, whatever the runtime: the runtime mounts these and the
 * file path checks accept only these, so both read them from here.
 */

/** The sandbox user's home: a tmpfs, the working directory of every exec. */
export const SANDBOX_HOME = '/home/sandboxuser';
/**
 * E2B's home, a symlink to the sandbox's in every image (the foundation makes it), so scripts
 * written for E2B find their absolute paths; file routes read it as the home.
 */
export const E2B_HOME_ALIAS = '/home/user';
/** The sandbox's /tmp: a tmpfs. */
export const SANDBOX_TMP = '/tmp';
/** The only places a sandbox can write: its tmpfs home and /tmp. */
export const WRITABLE_ROOTS = [SANDBOX_HOME, SANDBOX_TMP] as const;
/** Every sandbox's hostname; /etc/hosts maps it to a loopback address. */
export const SANDBOX_HOSTNAME = 'sandbox';

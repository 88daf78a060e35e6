/**
 * Where things are inside every sandbox, whatever the runtime: the runtime mounts these and the
 * file path checks accept only these, so both read them from here.
 */

/** The sandbox user's home: a tmpfs, the working directory of every exec. */
export const SANDBOX_HOME = '/home/sandboxuser';
/** The sandbox's /tmp: a tmpfs. */
export const SANDBOX_TMP = '/tmp';
/** The only places a sandbox can write: its tmpfs home and /tmp. */
export const WRITABLE_ROOTS = [SANDBOX_HOME, SANDBOX_TMP] as const;
/** Every sandbox's hostname; /etc/hosts maps it to a loopback address. */
export const SANDBOX_HOSTNAME = 'sandbox';

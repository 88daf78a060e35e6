import {
  FileNotFoundError,
  InvalidPathError,
  PayloadTooLargeError,
  SessionLostError,
  SessionNotFoundError,
} from '@sandpool/client';
import { SandboxError, type FileOperationError, type SandboxErrorCode } from 'deepagents';

/**
 * Codes of {@link SandpoolSandboxError}: Deep Agents' own (`COMMAND_FAILED`,
 * `FILE_OPERATION_FAILED`...) and the lifecycle ones `@langchain/daytona` also uses.
 */
export type SandpoolSandboxErrorCode =
  | SandboxErrorCode
  /** `create` failed: no server at the URL, a wrong API key, an unknown template, no capacity. */
  | 'SANDBOX_CREATION_FAILED'
  /** The session is unknown, expired or closed (by `close()`, another client or its TTL). */
  | 'SANDBOX_NOT_FOUND'
  /** The session's container or worker died; it cannot come back. Create a new one. */
  | 'SANDBOX_LOST'
  /** `close()` got no answer (the service is unreachable); call it again. */
  | 'SANDBOX_CLOSE_FAILED';

/**
 * A failure of the sandbox itself, not of one command or file: the service is unreachable, the
 * session is gone, creation failed. It extends Deep Agents' `SandboxError`, so code written for
 * any Deep Agents backend catches it; `cause` is the `@sandpool/client` error behind it
 * (`SessionLostError`, `ConnectionError`, `AuthError`...) and the message says what to do.
 *
 * A command that fails, or a file that is missing, is not an error: `execute` reports the exit
 * code, and `uploadFiles`/`downloadFiles` report a {@link FileOperationError} per file.
 */
export class SandpoolSandboxError extends SandboxError {
  override readonly name = 'SandpoolSandboxError';

  constructor(
    message: string,
    override readonly code: SandpoolSandboxErrorCode,
    cause?: Error,
  ) {
    super(message, code, cause);
    // Deep Agents' SandboxError resets the prototype to its own; restore the subclass's.
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/**
 * The Deep Agents error code for a failed file call of `@sandpool/client`, or `undefined` when
 * the failure is not about that file (the session is gone, the service does not answer), which
 * the caller throws instead.
 *
 * The service answers `invalid_path` for several causes; its message (the same from a worker and
 * through a coordinator) tells a directory and a refused access apart. A file over the upload
 * limit, or a sandbox out of space, is `permission_denied`: the sandbox refused to store it, and
 * Deep Agents has no closer code.
 */
export function fileOperationErrorOf(error: unknown): FileOperationError | undefined {
  if (error instanceof FileNotFoundError) return 'file_not_found';
  if (error instanceof PayloadTooLargeError) return 'permission_denied';
  if (error instanceof InvalidPathError) {
    if (/\bis a directory\b/i.test(error.message)) return 'is_directory';
    if (/\bmay not access\b|\bpermission denied\b/i.test(error.message)) return 'permission_denied';
    return 'invalid_path';
  }
  return undefined;
}

/**
 * Wraps a failure of the service in a {@link SandpoolSandboxError}: a gone session gets its own
 * code, anything else `fallback` (the operation that failed). An error already wrapped passes
 * through.
 */
export function sandboxFailure(
  error: unknown,
  fallback: SandpoolSandboxErrorCode,
): SandpoolSandboxError {
  if (error instanceof SandpoolSandboxError) return error;
  const cause = error instanceof Error ? error : new Error(String(error));
  if (error instanceof SessionNotFoundError) {
    return new SandpoolSandboxError(cause.message, 'SANDBOX_NOT_FOUND', cause);
  }
  if (error instanceof SessionLostError) {
    return new SandpoolSandboxError(cause.message, 'SANDBOX_LOST', cause);
  }
  return new SandpoolSandboxError(cause.message, fallback, cause);
}

import { SandpoolError } from '../../errors/sandpool-error.js';
import { parseJsonPayload } from './agent-protocol.js';

/**
 * What a failed sandbox operation means to a client. Both ways of reaching a sandbox (the agent,
 * which reports an errno name, and `docker exec`, whose tools print the errno's text) end here,
 * so a client sees the same code and wording whichever path served it.
 */

/** A failed operation as the agent reports it (an errno name and its text). */
export class AgentOperationError extends Error {
  constructor(
    readonly errno: string,
    message: string,
  ) {
    super(message);
  }
}

/** The error frame's payload, read defensively (the agent is untrusted). */
export function operationError(payload: Buffer): AgentOperationError {
  const body = parseJsonPayload(payload);
  return new AgentOperationError(
    typeof body.errno === 'string' ? body.errno : 'EIO',
    typeof body.message === 'string' ? body.message : 'unknown error',
  );
}

/** The one errno → public error mapping of file operations. */
export function fileErrorFor(errno: string, path: string, detail: string): SandpoolError {
  switch (errno) {
    case 'ENOENT':
      return new SandpoolError('file_not_found', `No file or directory at ${path} in the sandbox.`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new SandpoolError(
        'payload_too_large',
        `The sandbox has no space left for ${path}; remove files or write less.`,
      );
    case 'EISDIR':
      return new SandpoolError('invalid_path', `${path} is a directory; name a file.`);
    case 'ENOTDIR':
      return new SandpoolError('invalid_path', `A parent of ${path} is a file, not a directory.`);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new SandpoolError(
        'invalid_path',
        `The sandbox user may not access ${path}: ${detail}`,
      );
    default:
      return new SandpoolError(
        'invalid_request',
        `File operation on ${path} failed: ${[errno, detail].filter(Boolean).join(' ') || 'unknown error'}`,
      );
  }
}

/** Errno names recognised in the text a tool prints (`cat: x: No such file or directory`). */
const ERRNO_TEXTS: [RegExp, string][] = [
  [/No such file/i, 'ENOENT'],
  [/No space left/i, 'ENOSPC'],
  [/Is a directory/i, 'EISDIR'],
  [/Not a directory/i, 'ENOTDIR'],
  [/Permission denied/i, 'EACCES'],
  [/Read-only/i, 'EROFS'],
];

/** The errno a tool's error text names, or '' when none is recognised. */
export function errnoFromText(text: string): string {
  return ERRNO_TEXTS.find(([pattern]) => pattern.test(text))?.[1] ?? '';
}

/** The public error a failed file operation means; other errors pass through. */
export function mapFileError(error: unknown, path: string): Error {
  if (!(error instanceof AgentOperationError))
    return error instanceof Error ? error : new Error(String(error));
  return fileErrorFor(error.errno, path, error.message);
}

/** The error of every request on a connection that is gone. */
export function lostError(reason: string): SandpoolError {
  return new SandpoolError('session_lost', `The sandbox's agent ${reason}; create a new session.`);
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

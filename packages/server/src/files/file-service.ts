import type { Readable, Writable } from 'node:stream';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { FileEntry, FileStat, Sandbox } from '../runtime/sandbox-runtime.js';
import type { SessionManager } from '../sessions/session-manager.js';
import { FileDetailsReader, type FileDetails } from './file-details.js';
import { resolveSandboxPath } from './sandbox-path.js';

/** File operations in a session, done by the sandbox user inside the sandbox, never on the host. */
export class FileService {
  constructor(private readonly sessions: SessionManager) {}

  async write(
    sessionId: string,
    rawPath: string,
    content: Readable,
  ): Promise<{ path: string; size: number }> {
    const path = resolveSandboxPath(rawPath, { allowRoot: false });
    const size = await this.inSession(sessionId, (sandbox) => sandbox.writeFile(path, content));
    return { path, size };
  }

  /** Checks the file exists and is a regular file; the route streams it afterwards. */
  async open(
    sessionId: string,
    rawPath: string,
  ): Promise<{ path: string; stat: FileStat; pipeTo(destination: Writable): Promise<void> }> {
    const path = resolveSandboxPath(rawPath);
    const stat = await this.inSession(sessionId, (sandbox) => sandbox.statFile(path));
    if (!stat) throw new SandpoolError('file_not_found', `No file at ${path} in the sandbox.`);
    if (stat.type === 'directory') {
      throw new SandpoolError(
        'invalid_path',
        `${path} is a directory; list it with GET /files/list?path=...`,
      );
    }
    return {
      path,
      stat,
      pipeTo: (destination) =>
        this.inSession(sessionId, (sandbox) => sandbox.readFile(path, destination)),
    };
  }

  list(sessionId: string, rawPath: string): Promise<FileEntry[]> {
    const path = resolveSandboxPath(rawPath);
    return this.inSession(sessionId, (sandbox) => sandbox.listFiles(path));
  }

  remove(sessionId: string, rawPath: string): Promise<void> {
    const path = resolveSandboxPath(rawPath, { allowRoot: false });
    return this.inSession(sessionId, (sandbox) => sandbox.removeFile(path));
  }

  /** Details of what is at the path (a symlink itself, not its target); `file_not_found` if nothing. */
  async stat(sessionId: string, rawPath: string): Promise<FileDetails> {
    const path = resolveSandboxPath(rawPath);
    const details = await this.inSession(sessionId, (sandbox) =>
      new FileDetailsReader(sandbox).stat(path),
    );
    if (!details) throw new SandpoolError('file_not_found', `No file or directory at ${path}.`);
    return details;
  }

  /** The entries under a directory down to `depth` levels (1: its children). */
  listTree(sessionId: string, rawPath: string, depth: number): Promise<FileDetails[]> {
    const path = resolveSandboxPath(rawPath);
    if (!Number.isInteger(depth) || depth < 1 || depth > 64) {
      throw new SandpoolError('invalid_request', 'depth is a whole number from 1 to 64.');
    }
    return this.inSession(sessionId, (sandbox) => new FileDetailsReader(sandbox).tree(path, depth));
  }

  /** Makes a directory and its parents; `created` is false when it was already there. */
  makeDir(sessionId: string, rawPath: string): Promise<{ created: boolean; entry: FileDetails }> {
    const path = resolveSandboxPath(rawPath, { allowRoot: false });
    return this.inSession(sessionId, (sandbox) => new FileDetailsReader(sandbox).makeDir(path));
  }

  /** Moves (renames) a file or directory, making the destination's parents. */
  move(sessionId: string, rawSource: string, rawDestination: string): Promise<FileDetails> {
    const source = resolveSandboxPath(rawSource, { allowRoot: false });
    const destination = resolveSandboxPath(rawDestination, { allowRoot: false });
    return this.inSession(sessionId, (sandbox) =>
      new FileDetailsReader(sandbox).move(source, destination),
    );
  }

  private async inSession<T>(
    sessionId: string,
    operation: (sandbox: Sandbox) => Promise<T>,
  ): Promise<T> {
    const session = this.sessions.get(sessionId);
    try {
      return await operation(session.sandbox);
    } catch (error) {
      if (error instanceof SandpoolError && error.code === 'session_lost') {
        await this.sessions.markLost(sessionId, error.message);
      }
      throw error;
    }
  }
}

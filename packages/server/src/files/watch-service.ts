import { SandpoolError } from '../errors/sandpool-error.js';
import type { WatchEventType } from '../runtime/sandbox-processes.js';
import type { SessionManager } from '../sessions/session-manager.js';
import { resolveSandboxPath } from './sandbox-path.js';

/** One line of a watch stream. */
export type WatchStreamEvent =
  | { type: 'ready'; path: string }
  | { type: WatchEventType; name: string; is_dir: boolean }
  | { type: 'end'; reason: string }
  | { type: 'error'; error: { code: string; message: string } };

export interface ActiveWatch {
  /** The absolute path watched. */
  path: string;
  /** Settles after the last event was emitted (the directory went away, or `stop`). */
  done: Promise<void>;
  /** Stops watching (the client left); safe to call twice. */
  stop(): void;
}

/**
 * Watches directories of a session through inotify in the sandbox. Events flow at the client's
 * pace: while `emit` waits, the agent reads no more, and the kernel's queue overflowing shows
 * as an `overflow` event, so a burst of changes costs the worker nothing.
 */
export class WatchService {
  constructor(private readonly sessions: SessionManager) {}

  /** Resolves once the directory is watched, so errors can still answer with a status. */
  async watch(
    sessionId: string,
    rawPath: string,
    recursive: boolean,
    emit: (event: WatchStreamEvent) => Promise<void> | void,
  ): Promise<ActiveWatch> {
    const path = resolveSandboxPath(rawPath);
    const session = this.sessions.get(sessionId);
    const processes = session.sandbox.processes;
    if (processes === undefined) {
      throw new SandpoolError(
        'invalid_request',
        'This session’s sandbox runs without the in-sandbox agent (re-adopted after a worker restart), so it cannot watch files; create a new session.',
      );
    }
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    let stopped = false;
    let opened!: () => void;
    const ready = new Promise<void>((resolve) => (opened = resolve));
    const handle = await processes
      .watch(path, recursive, {
        onEvents: async (events) => {
          await ready;
          for (const event of events) {
            if (stopped) return;
            await emit({ type: event.type, name: event.name, is_dir: event.isDir });
          }
        },
        onEnd: (reason) => {
          void Promise.resolve(emit({ type: 'end', reason: endReason(reason) })).finally(finish);
        },
        onLost: (error) => {
          const failure =
            error instanceof SandpoolError
              ? error
              : new SandpoolError('session_lost', `The sandbox went away: ${error.message}`);
          void this.sessions
            .markLost(sessionId, 'its container is gone')
            .then(() => emit({ type: 'error', error: failure.toBody().error }))
            .finally(finish);
        },
      })
      .catch(async (error: unknown) => {
        if (error instanceof SandpoolError && error.code === 'session_lost') {
          await this.sessions.markLost(sessionId, 'its container is gone');
        }
        throw error;
      });
    // A first line at once: the client knows the watch is in place (and headers go out).
    await emit({ type: 'ready', path });
    opened();
    return {
      path,
      done,
      stop: () => {
        if (stopped) return;
        stopped = true;
        handle.stop();
        finish();
      },
    };
  }
}

function endReason(reason: string): string {
  if (reason === 'removed') return 'the watched directory was removed';
  if (reason === 'moved') return 'the watched directory was moved';
  return reason;
}

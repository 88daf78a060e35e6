import { errorFromCode, isApiErrorCode, SandboxError } from './errors.js';
import { responseBody, type HttpTransport } from './http-transport.js';
import { readNdjson } from './ndjson.js';

/** A change in a watched directory. `name` is relative to it. */
export interface WatchEvent {
  type: 'create' | 'write' | 'remove' | 'rename' | 'chmod' | 'overflow';
  name: string;
  isDir: boolean;
}

/** Options of {@link FileWatcher.watch}. */
export interface WatchOptions {
  /** Also watch every subdirectory (and new ones); default `false`. */
  recursive?: boolean;
  /** Stops watching. */
  signal?: AbortSignal;
}

/** A running watch. */
export interface WatchHandle {
  /** Stops watching; safe to call twice. */
  stop(): void;
  /**
   * Resolves with the reason the watch ended on its own (the directory was removed or moved),
   * or `'stopped'` after {@link WatchHandle.stop}; rejects when the stream breaks.
   */
  readonly done: Promise<string>;
}

/** Directory watching of a sandbox (`sandbox.files.watch`), from inotify inside it. */
export class FileWatcher {
  /** @internal */
  constructor(
    private readonly transport: HttpTransport,
    private readonly route: (suffix: string) => string,
  ) {}

  /**
   * Calls `onEvent` for each change under `path` until stopped or until the directory goes away.
   * Resolves once the directory is watched, so changes made afterwards are all seen.
   */
  async watch(
    path: string,
    onEvent: (event: WatchEvent) => void,
    options: WatchOptions = {},
  ): Promise<WatchHandle> {
    const controller = new AbortController();
    const signal = options.signal
      ? AbortSignal.any([options.signal, controller.signal])
      : controller.signal;
    const route = this.route('/files/watch');
    const response = await this.transport.request({
      method: 'GET',
      path: route,
      query: { path, recursive: options.recursive === true ? 'true' : 'false' },
      accept: 'application/x-ndjson',
      timeoutMs: null,
      signal,
    });
    const body = responseBody(response);
    if (body === null) throw new SandboxError('invalid_response', 'a watch without a body');
    const done = (async (): Promise<string> => {
      try {
        for await (const line of readNdjson(body)) {
          const event = line as Record<string, unknown>;
          if (event.type === 'ready') continue;
          if (event.type === 'end') return String(event.reason);
          if (event.type === 'error') {
            const error = (event.error ?? {}) as Record<string, unknown>;
            throw isApiErrorCode(error.code)
              ? errorFromCode(error.code, String(error.message))
              : new SandboxError('invalid_response', String(error.message));
          }
          onEvent({
            type: event.type as WatchEvent['type'],
            name: String(event.name),
            isDir: event.is_dir === true,
          });
        }
      } catch (error) {
        if (controller.signal.aborted) return 'stopped';
        throw error instanceof SandboxError
          ? error
          : this.transport.networkError(error, this.transport.urlFor(route), signal, null);
      }
      return 'stopped';
    })();
    done.catch(() => undefined); // observed through the handle
    return { stop: () => controller.abort(), done };
  }
}

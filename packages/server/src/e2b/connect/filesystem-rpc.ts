import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import type { FastifyBaseLogger } from 'fastify';
import { posix } from 'node:path';
import type { FileDetails } from '../../files/file-details.js';
import type { FileService } from '../../files/file-service.js';
import type { WatchService, WatchStreamEvent } from '../../files/watch-service.js';
import type { WatchEventType } from '../../runtime/sandbox-processes.js';
import {
  EntryInfoSchema,
  EventType,
  FileType,
  FilesystemEventSchema,
  WatchDirResponseSchema,
  type EntryInfo,
  type Filesystem,
  type FilesystemEvent,
  type WatchDirResponse,
} from './gen/filesystem/filesystem_pb.js';
import { asConnect, toConnectError } from './connect-errors.js';
import { sessionIdOf } from './envd-context.js';
import { checkEnvdUser } from './envd-user.js';
import { EventQueue, keepaliveIntervalMs, type TimerStart } from './event-queue.js';
import type { WatcherRegistry } from './watcher-registry.js';

export interface FilesystemRpcOptions {
  files: FileService;
  watches: WatchService;
  watchers: WatcherRegistry;
  log: FastifyBaseLogger;
  queueCapacity?: number;
  timer?: TimerStart;
}

/** envd's `filesystem.Filesystem` over sandpool's file and watch services. */
export function createFilesystemRpc(options: FilesystemRpcOptions): ServiceImpl<typeof Filesystem> {
  const { files, watches, watchers, log } = options;

  /** The entry for an event's name, when the client asked for it and it still exists. */
  async function entryOf(sessionId: string, path: string): Promise<EntryInfo | undefined> {
    try {
      return toEntryInfo(await files.stat(sessionId, path));
    } catch {
      return undefined; // gone again (a remove, a rename's old name): the event stands alone
    }
  }

  return {
    async stat(request, context) {
      checkEnvdUser(context.requestHeader.get('authorization'));
      const sessionId = sessionIdOf(context);
      const details = await asConnect(() => files.stat(sessionId, request.path), log);
      return { entry: toEntryInfo(details) };
    },

    async listDir(request, context) {
      checkEnvdUser(context.requestHeader.get('authorization'));
      const sessionId = sessionIdOf(context);
      const depth = request.depth === 0 ? 1 : request.depth;
      const entries = await asConnect(() => files.listTree(sessionId, request.path, depth), log);
      return { entries: entries.map(toEntryInfo) };
    },

    async makeDir(request, context) {
      checkEnvdUser(context.requestHeader.get('authorization'));
      const sessionId = sessionIdOf(context);
      const { created, entry } = await asConnect(() => files.makeDir(sessionId, request.path), log);
      if (!created) {
        throw new ConnectError(`file_exists: ${entry.path} already exists.`, Code.AlreadyExists);
      }
      return { entry: toEntryInfo(entry) };
    },

    async move(request, context) {
      checkEnvdUser(context.requestHeader.get('authorization'));
      const sessionId = sessionIdOf(context);
      const entry = await asConnect(
        () => files.move(sessionId, request.source, request.destination),
        log,
      );
      return { entry: toEntryInfo(entry) };
    },

    async remove(request, context) {
      checkEnvdUser(context.requestHeader.get('authorization'));
      const sessionId = sessionIdOf(context);
      // Nothing there is file_not_found → NotFound, as envd answers.
      await asConnect(() => files.remove(sessionId, request.path), log);
      return {};
    },

    async *watchDir(request, context) {
      checkEnvdUser(context.requestHeader.get('authorization'));
      const sessionId = sessionIdOf(context);
      const every = keepaliveIntervalMs(context.requestHeader.get('keepalive-ping-interval'));
      const queue = new EventQueue<WatchDirResponse>({
        capacity: options.queueCapacity ?? 64,
        timer: options.timer,
        ...(every === undefined
          ? {}
          : {
              keepalive: {
                intervalMs: every,
                value: () =>
                  create(WatchDirResponseSchema, { event: { case: 'keepalive', value: {} } }),
              },
            }),
      });
      let root = '';
      const watch = await asConnect(
        () =>
          watches.watch(sessionId, request.path, request.recursive, async (event) => {
            if (event.type === 'ready') {
              root = event.path;
              return queue.push(
                create(WatchDirResponseSchema, { event: { case: 'start', value: {} } }),
              );
            }
            if (event.type === 'end') return queue.end();
            if (event.type === 'error') {
              return queue.fail(toConnectError(new WatchFailure(event), log));
            }
            const mapped = toFilesystemEvent(event);
            if (!mapped) return;
            if (request.includeEntry && event.type !== 'remove') {
              mapped.entry = await entryOf(sessionId, posix.join(root, event.name));
            }
            await queue.push(
              create(WatchDirResponseSchema, { event: { case: 'filesystem', value: mapped } }),
            );
          }),
        log,
      );
      const onAbort = () => queue.close();
      context.signal.addEventListener('abort', onAbort, { once: true });
      try {
        for await (const event of queue) yield event;
      } finally {
        // The client left, the deadline passed, or the directory went: the watch goes too.
        context.signal.removeEventListener('abort', onAbort);
        watch.stop();
        queue.close();
      }
    },

    async createWatcher(request, context) {
      checkEnvdUser(context.requestHeader.get('authorization'));
      const sessionId = sessionIdOf(context);
      const watcherId = await asConnect(
        () => watchers.create(sessionId, request.path, request.recursive),
        log,
      );
      return { watcherId };
    },

    async getWatcherEvents(request, context) {
      const sessionId = sessionIdOf(context);
      const events = await asConnect(() => watchers.take(sessionId, request.watcherId), log);
      return {
        events: events.map((event) =>
          create(FilesystemEventSchema, { name: event.name, type: EVENT_TYPE[event.type] }),
        ),
      };
    },

    async removeWatcher(request, context) {
      const sessionId = sessionIdOf(context);
      await asConnect(() => watchers.remove(sessionId, request.watcherId), log);
      return {};
    },
  };
}

const EVENT_TYPE = {
  create: EventType.CREATE,
  write: EventType.WRITE,
  remove: EventType.REMOVE,
  rename: EventType.RENAME,
  chmod: EventType.CHMOD,
} as const satisfies Record<Exclude<WatchEventType, 'overflow'>, EventType>;

/** A watch event as envd's; `undefined` for an overflow (envd has no such event). */
export function toFilesystemEvent(event: {
  type: WatchEventType;
  name: string;
}): FilesystemEvent | undefined {
  if (event.type === 'overflow') return undefined;
  return create(FilesystemEventSchema, { name: event.name, type: EVENT_TYPE[event.type] });
}

const FILE_TYPE = {
  file: FileType.FILE,
  directory: FileType.DIRECTORY,
  symlink: FileType.SYMLINK,
  other: FileType.UNSPECIFIED,
} as const satisfies Record<FileDetails['type'], FileType>;

export function toEntryInfo(details: FileDetails): EntryInfo {
  return create(EntryInfoSchema, {
    name: details.name,
    type: FILE_TYPE[details.type],
    path: details.path,
    size: BigInt(details.size),
    mode: details.mode,
    permissions: details.permissions,
    owner: details.owner,
    group: details.group,
    modifiedTime: timestampFromMs(details.mtimeMs),
    ...(details.symlinkTarget === undefined ? {} : { symlinkTarget: details.symlinkTarget }),
  });
}

/** The watch service's error event (the sandbox went away) as an error to throw. */
class WatchFailure extends ConnectError {
  constructor(event: Extract<WatchStreamEvent, { type: 'error' }>) {
    super(
      `${event.error.code}: ${event.error.message}`,
      event.error.code === 'session_lost' ? Code.Unavailable : Code.Internal,
    );
  }
}

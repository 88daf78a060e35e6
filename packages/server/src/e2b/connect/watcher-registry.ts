import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type { ActiveWatch, WatchService, WatchStreamEvent } from '../../files/watch-service.js';
import type { WatchEventType } from '../../runtime/sandbox-processes.js';

/** One change seen by a polled watcher. */
export interface WatcherEvent {
  type: Exclude<WatchEventType, 'overflow'>;
  name: string;
  isDir: boolean;
}

export interface WatcherRegistryOptions {
  watches: Pick<WatchService, 'watch'>;
  log: FastifyBaseLogger;
  /** A watcher nobody polled for this long is removed (its client is gone). */
  idleMs: number;
  maxPerSession: number;
  /** Events kept between two polls; later ones are dropped and logged. */
  maxEventsPerWatcher: number;
  now?: () => number;
}

interface Watcher {
  readonly id: string;
  readonly sessionId: string;
  readonly watch: ActiveWatch;
  events: WatcherEvent[];
  dropped: number;
  lastPolledMs: number;
}

/**
 * envd's polled watchers (CreateWatcher, GetWatcherEvents, RemoveWatcher) over the watch
 * service: each is a live watch whose events wait, bounded, for the next poll. A watcher
 * nobody polls any more is removed by `sweep`, so a client that forgets one leaks nothing.
 */
export class WatcherRegistry {
  private readonly watchers = new Map<string, Watcher>();
  private readonly now: () => number;

  constructor(private readonly options: WatcherRegistryOptions) {
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.watchers.size;
  }

  async create(sessionId: string, path: string, recursive: boolean): Promise<string> {
    const mine = [...this.watchers.values()].filter((w) => w.sessionId === sessionId);
    if (mine.length >= this.options.maxPerSession) {
      throw new SandpoolError(
        'invalid_request',
        `This sandbox has ${this.options.maxPerSession} watchers already; remove one (RemoveWatcher) first.`,
      );
    }
    const id = randomBytes(12).toString('hex');
    // Events can come before `watch` resolves (the first is `ready`): kept until the record exists.
    const holder: { watcher?: Watcher; early: WatchStreamEvent[] } = { early: [] };
    const watch = await this.options.watches.watch(sessionId, path, recursive, (event) => {
      if (holder.watcher) this.note(holder.watcher, event);
      else holder.early.push(event);
    });
    const watcher: Watcher = {
      id,
      sessionId,
      watch,
      events: [],
      dropped: 0,
      lastPolledMs: this.now(),
    };
    holder.watcher = watcher;
    for (const event of holder.early) this.note(watcher, event);
    this.watchers.set(id, watcher);
    return id;
  }

  /** The events since the last poll. */
  take(sessionId: string, id: string): WatcherEvent[] {
    const watcher = this.find(sessionId, id);
    watcher.lastPolledMs = this.now();
    const events = watcher.events;
    watcher.events = [];
    return events;
  }

  remove(sessionId: string, id: string): void {
    this.drop(this.find(sessionId, id));
  }

  /** Removes watchers idle past `idleMs`; returns how many. */
  sweep(): number {
    const limit = this.now() - this.options.idleMs;
    let removed = 0;
    for (const watcher of [...this.watchers.values()]) {
      if (watcher.lastPolledMs < limit) {
        this.drop(watcher);
        removed++;
      }
    }
    return removed;
  }

  close(): void {
    for (const watcher of [...this.watchers.values()]) this.drop(watcher);
  }

  private note(watcher: Watcher, event: WatchStreamEvent): void {
    switch (event.type) {
      case 'ready':
      case 'overflow':
      case 'end':
      case 'error':
        return; // nothing to report to a poll; the watch itself is over on end and error
      case 'create':
      case 'write':
      case 'remove':
      case 'rename':
      case 'chmod':
        if (watcher.events.length >= this.options.maxEventsPerWatcher) {
          if (watcher.dropped++ === 0) {
            this.options.log.warn(
              { sessionId: watcher.sessionId, watcherId: watcher.id },
              'watcher not polled; dropping events past its limit',
            );
          }
          return;
        }
        watcher.events.push({ type: event.type, name: event.name, isDir: event.is_dir });
    }
  }

  private find(sessionId: string, id: string): Watcher {
    const watcher = this.watchers.get(id);
    if (!watcher || watcher.sessionId !== sessionId) {
      throw new SandpoolError(
        'file_not_found',
        `No watcher ${id.slice(0, 64)} in this sandbox (removed, or idle past ${this.options.idleMs / 1000} s); create another.`,
      );
    }
    return watcher;
  }

  private drop(watcher: Watcher): void {
    watcher.watch.stop();
    this.watchers.delete(watcher.id);
  }
}

import { createContextValues } from '@connectrpc/connect';
import { fastifyConnectPlugin } from '@connectrpc/connect-fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { FileService } from '../../files/file-service.js';
import type { WatchService } from '../../files/watch-service.js';
import type { ProcessService } from '../../processes/process-service.js';
import type { EnvdMount } from '../sandbox-scope.js';
import { envdSessionKey } from './envd-context.js';
import { createFilesystemRpc } from './filesystem-rpc.js';
import { Filesystem } from './gen/filesystem/filesystem_pb.js';
import { Process } from './gen/process/process_pb.js';
import { createProcessRpc } from './process-rpc.js';
import { WatcherRegistry } from './watcher-registry.js';

export interface EnvdConnectOptions {
  processes: ProcessService;
  files: FileService;
  watches: WatchService;
  log: FastifyBaseLogger;
  /**
   * The session a request is for, once the enclosing scope resolved it and checked its access
   * token (its hooks run first); throws a SandpoolError otherwise.
   */
  sessionIdOf: (request: FastifyRequest) => string;
  /** A polled watcher not polled for this long is removed (default 10 min). */
  watcherIdleMs?: number;
}

/**
 * The envd Connect services as a mount of the E2B sandbox scope (`e2b/envd-mounts.ts`); left
 * out in apps built without background processes and watches.
 */
export const envdConnectRoutes: EnvdMount = async (scope, { sessionOf, services }) => {
  const { processes, watches, files } = services;
  if (processes === undefined || watches === undefined) return;
  await registerEnvdConnect(scope, {
    processes,
    watches,
    files,
    log: scope.log,
    sessionIdOf: (request) => sessionOf(request).id,
  });
};

const SWEEP_EVERY_MS = 30_000;
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * Mounts envd's Connect services (`/process.Process/*`, `/filesystem.Filesystem/*`, JSON and
 * binary, unary and server streaming) in `scope`, served by the Connect library itself from the
 * descriptors generated out of envd's protos (`gen/`, `npm run gen:envd -w packages/server`).
 */
export async function registerEnvdConnect(
  scope: FastifyInstance,
  options: EnvdConnectOptions,
): Promise<void> {
  const watchers = new WatcherRegistry({
    watches: options.watches,
    log: options.log,
    idleMs: options.watcherIdleMs ?? 10 * 60_000,
    maxPerSession: 16,
    maxEventsPerWatcher: 10_000,
  });
  const sweeper = setInterval(() => watchers.sweep(), SWEEP_EVERY_MS);
  sweeper.unref();
  scope.addHook('onClose', async () => {
    clearInterval(sweeper);
    watchers.close();
  });
  const sessionOfRequest = new WeakMap<FastifyRequest, string>();
  await scope.register(async (connect) => {
    // Resolved in a hook, where a failure is answered by the error handler (inside the Connect
    // plugin a throw would leave the request unanswered).
    connect.addHook('preHandler', async (request) => {
      sessionOfRequest.set(request, options.sessionIdOf(request));
      // The app's JSON-bodies hook stands in `{}` for a body no parser read; Connect reads the
      // raw stream itself, and only when no body was parsed.
      request.body = undefined;
    });
    // Connect reads its own bodies (JSON or binary, enveloped for streams): the app's JSON
    // parsers step aside in this scope only.
    connect.removeAllContentTypeParsers();
    await connect.register(fastifyConnectPlugin, {
      routes: (router) => {
        router.service(
          Process,
          createProcessRpc({ processes: options.processes, log: options.log }),
        );
        router.service(
          Filesystem,
          createFilesystemRpc({
            files: options.files,
            watches: options.watches,
            watchers,
            log: options.log,
          }),
        );
      },
      contextValues: (request) =>
        createContextValues().set(envdSessionKey, sessionOfRequest.get(request)),
      // A request message is read whole before its handler runs: bounded as the app's bodies
      // (Connect's default is 4 GiB).
      readMaxBytes: MAX_MESSAGE_BYTES,
      // Requests in flight when the server closes end (their streams with an error) after 2 s.
      shutdownTimeoutMs: 2_000,
    });
  });
}

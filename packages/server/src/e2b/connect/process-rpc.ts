import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { FastifyBaseLogger } from 'fastify';
import type {
  ProcessOutputEvent,
  ProcessService,
  ProcessView,
} from '../../processes/process-service.js';
import {
  ProcessEventSchema,
  Signal,
  type Process,
  type ProcessEvent,
  type ProcessSelector,
} from './gen/process/process_pb.js';
import { asConnect, toConnectError } from './connect-errors.js';
import { sessionIdOf } from './envd-context.js';
import { checkEnvdUser } from './envd-user.js';
import { EventQueue, keepaliveIntervalMs, type TimerStart } from './event-queue.js';

export interface ProcessRpcOptions {
  processes: ProcessService;
  log: FastifyBaseLogger;
  /** Events held per stream before the process's output waits for the client. */
  queueCapacity?: number;
  timer?: TimerStart;
}

/**
 * envd's `process.Process` over sandpool's process service. A command is a background process
 * of the session: the stream shows its start (pid), output and end; a client that goes away
 * leaves it running (as envd does), to be found again with Connect, List or a signal. The
 * stream's deadline (`timeoutMs` in the SDK, `Connect-Timeout-Ms` on the wire) is the process's.
 */
export function createProcessRpc(options: ProcessRpcOptions): ServiceImpl<typeof Process> {
  const { processes, log } = options;

  async function* follow(
    sessionId: string,
    selector: string,
    context: HandlerContext,
  ): AsyncGenerator<{ event: ProcessEvent }> {
    const view = await asConnect(() => processes.check(sessionId, selector), log);
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    context.signal.addEventListener('abort', onAbort, { once: true });
    const every = keepaliveIntervalMs(context.requestHeader.get('keepalive-ping-interval'));
    const queue = new EventQueue<ProcessEvent>({
      capacity: options.queueCapacity ?? 64,
      timer: options.timer,
      ...(every === undefined
        ? {}
        : {
            keepalive: {
              intervalMs: every,
              value: () => create(ProcessEventSchema, { event: { case: 'keepalive', value: {} } }),
            },
          }),
    });
    const pumping = processes
      .follow(
        sessionId,
        selector,
        async (event) => {
          const mapped = toProcessEvent(event, view.pty);
          if (mapped instanceof ConnectError) queue.fail(mapped);
          else if (mapped) await queue.push(mapped);
        },
        stop.signal,
      )
      .then(
        () => queue.end(),
        (error: unknown) => queue.fail(toConnectError(error, log)),
      );
    try {
      for await (const event of queue) yield { event };
    } finally {
      // The client left or the stream ended: stop following; the process itself runs on.
      context.signal.removeEventListener('abort', onAbort);
      stop.abort();
      queue.close();
      await pumping;
    }
  }

  return {
    async *start(request, context) {
      checkEnvdUser(context.requestHeader.get('authorization'));
      const sessionId = sessionIdOf(context);
      const config = request.process;
      if (!config || config.cmd === '') {
        throw new ConnectError(
          'invalid_request: process.cmd names the program to run.',
          Code.InvalidArgument,
        );
      }
      const size = request.pty?.size;
      const started = await asConnect(
        () =>
          processes.start(sessionId, {
            argv: [config.cmd, ...config.args],
            cwd: config.cwd,
            env: config.envs,
            tag: request.tag,
            stdin: request.stdin === true,
            timeoutMs: deadlineOf(context),
            pty: request.pty ? { cols: size?.cols || 80, rows: size?.rows || 24 } : undefined,
          }),
        log,
      );
      yield* follow(sessionId, String(started.pid), context);
    },

    async *connect(request, context) {
      const sessionId = sessionIdOf(context);
      yield* follow(sessionId, selectorOf(request.process), context);
    },

    async list(_request, context) {
      const sessionId = sessionIdOf(context);
      const views = await asConnect(() => processes.list(sessionId), log);
      return {
        processes: views
          .filter((view) => view.running)
          .map((view) => ({
            pid: view.pid,
            ...(view.tag === null ? {} : { tag: view.tag }),
            config: { cmd: view.argv[0] ?? '', args: view.argv.slice(1), envs: {}, cwd: view.cwd },
          })),
      };
    },

    async sendInput(request, context) {
      const sessionId = sessionIdOf(context);
      const selector = selectorOf(request.process);
      const input = request.input?.input;
      if (input?.case === undefined) return {};
      await asConnect(() => {
        runningOrNotFound(processes.get(sessionId, selector));
        processes.writeStdin(sessionId, selector, input.value, false);
      }, log);
      return {};
    },

    async streamInput(requests, context) {
      const sessionId = sessionIdOf(context);
      let selector: string | undefined;
      for await (const request of requests) {
        const event = request.event;
        if (event.case === 'start') selector = selectorOf(event.value.process);
        else if (event.case === 'data') {
          if (selector === undefined) {
            throw new ConnectError(
              'invalid_request: send a start event (the process) before data.',
              Code.InvalidArgument,
            );
          }
          const input = event.value.input?.input;
          const target = selector;
          if (input?.case !== undefined) {
            await asConnect(() => processes.writeStdin(sessionId, target, input.value, false), log);
          }
        }
      }
      return {};
    },

    async closeStdin(request, context) {
      const sessionId = sessionIdOf(context);
      const selector = selectorOf(request.process);
      await asConnect(() => {
        runningOrNotFound(processes.get(sessionId, selector));
        processes.writeStdin(sessionId, selector, new Uint8Array(), true);
      }, log);
      return {};
    },

    async sendSignal(request, context) {
      const sessionId = sessionIdOf(context);
      const selector = selectorOf(request.process);
      await asConnect(async () => {
        runningOrNotFound(processes.get(sessionId, selector));
        if (request.signal === Signal.SIGKILL) await processes.kill(sessionId, selector);
        else if (request.signal === Signal.SIGTERM)
          processes.signal(sessionId, selector, 'SIGTERM');
        else {
          throw new ConnectError(
            'invalid_request: signal is SIGTERM (15) or SIGKILL (9).',
            Code.InvalidArgument,
          );
        }
      }, log);
      return {};
    },

    async update(request, context) {
      const sessionId = sessionIdOf(context);
      const selector = selectorOf(request.process);
      const size = request.pty?.size;
      if (!size) return {};
      await asConnect(
        () => processes.resize(sessionId, selector, { cols: size.cols, rows: size.rows }),
        log,
      );
      return {};
    },
  };
}

/** The process service's selector: a pid as digits, or a tag. */
function selectorOf(selector: ProcessSelector | undefined): string {
  const chosen = selector?.selector;
  if (chosen?.case === 'pid') return String(chosen.value);
  if (chosen?.case === 'tag' && chosen.value !== '') return chosen.value;
  throw new ConnectError('invalid_request: name the process by pid or tag.', Code.InvalidArgument);
}

/** envd forgets a process when it exits; the SDK's `kill` answers false on NotFound. */
function runningOrNotFound(view: ProcessView): void {
  if (!view.running) {
    throw new ConnectError(
      `process_not_found: process ${view.pid} has exited (code ${view.exit_code ?? -1}).`,
      Code.NotFound,
    );
  }
}

/** The stream's deadline becomes the process's timeout (0: none), as in envd. */
function deadlineOf(context: HandlerContext): number {
  const remaining = context.timeoutMs();
  if (remaining === undefined) return 0;
  return Math.max(1, Math.ceil(remaining));
}

/** One service event as envd's, `undefined` for what envd has no event for. */
export function toProcessEvent(
  event: ProcessOutputEvent,
  pty: boolean,
): ProcessEvent | ConnectError | undefined {
  switch (event.type) {
    case 'start':
      return create(ProcessEventSchema, { event: { case: 'start', value: { pid: event.pid } } });
    case 'stdout':
    case 'stderr': {
      const value = Buffer.from(event.data, 'utf8');
      const stream = pty ? 'pty' : event.type;
      return create(ProcessEventSchema, {
        event: { case: 'data', value: { output: { case: stream, value } } },
      });
    }
    case 'truncated':
      return undefined; // older output was dropped before this reader came; envd has no event
    case 'exit': {
      const status = event.timed_out
        ? 'killed at its deadline (timeoutMs)'
        : `exit status ${event.exit_code}`;
      return create(ProcessEventSchema, {
        event: {
          case: 'end',
          value: {
            exitCode: event.exit_code,
            exited: !event.timed_out,
            status,
            ...(event.exit_code === 0 && !event.timed_out ? {} : { error: status }),
          },
        },
      });
    }
    case 'error':
      return toConnectError(new ConnectErrorFromBody(event.error));
  }
}

/** An error event's body (the process's sandbox went away) as a Connect error. */
class ConnectErrorFromBody extends ConnectError {
  constructor(body: { code: string; message: string }) {
    super(
      `${body.code}: ${body.message}`,
      body.code === 'session_lost' ? Code.Unavailable : Code.Internal,
    );
  }
}

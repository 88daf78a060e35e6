import type {
  ProcessInfo,
  ProcessOutputEvent,
  StartedProcess,
  StartProcessOptions,
} from '@sandpool/client';
import { SandpoolError, type ErrorCode } from '../errors/sandpool-error.js';
import type {
  ProcessOutputEvent as ServiceOutputEvent,
  ProcessService,
  ProcessView,
} from '../processes/process-service.js';
import type { McpProcesses } from './mcp-sandbox.js';

/**
 * One session's background processes through the worker's ProcessService, in the SDK's shapes
 * (what `start_process` and `process_output` use), so the MCP face of a worker does not call its
 * own HTTP API.
 */
export class ServiceSandboxProcesses implements McpProcesses {
  constructor(
    private readonly service: ProcessService,
    private readonly sessionId: string,
  ) {}

  async start(
    command: string | readonly string[],
    options: StartProcessOptions = {},
  ): Promise<StartedProcess> {
    const started = await this.service.start(this.sessionId, {
      ...(typeof command === 'string' ? { command } : { argv: [...command] }),
      cwd: options.cwd,
      env: options.env,
      tag: options.tag,
      stdin: options.stdin,
      timeoutMs: options.timeoutMs,
      pty: options.pty,
    });
    return { pid: started.pid, tag: started.tag, startedAt: started.started_at };
  }

  async get(pidOrTag: number | string): Promise<ProcessInfo> {
    return infoFrom(this.service.get(this.sessionId, String(pidOrTag)));
  }

  /**
   * The service pushes events and waits for each to be taken (backpressure); this turns that
   * into a pull. Leaving the loop aborts the follow and releases a pending push, so nothing
   * waits behind a reader that went away.
   */
  async *output(
    pidOrTag: number | string,
    options: { signal?: AbortSignal; follow?: boolean } = {},
  ): AsyncGenerator<ProcessOutputEvent, void, undefined> {
    const controller = new AbortController();
    const signal = options.signal
      ? AbortSignal.any([options.signal, controller.signal])
      : controller.signal;
    const queue: ServiceOutputEvent[] = [];
    let taken: (() => void) | undefined;
    let wake: (() => void) | undefined;
    let finished = false;
    let failure: Error | undefined;
    this.service
      .follow(
        this.sessionId,
        String(pidOrTag),
        (event) =>
          new Promise<void>((resolve) => {
            if (signal.aborted) return resolve();
            queue.push(event);
            taken = resolve;
            wake?.();
          }),
        signal,
        { live: options.follow !== false },
      )
      .then(
        () => undefined,
        (error: unknown) => {
          failure = error instanceof Error ? error : new Error(String(error));
        },
      )
      .finally(() => {
        finished = true;
        wake?.();
      });
    try {
      for (;;) {
        const event = queue.shift();
        if (event !== undefined) {
          const release = taken;
          taken = undefined;
          release?.();
          const mapped = eventFrom(event);
          if (mapped !== undefined) yield mapped;
          continue;
        }
        if (finished) {
          if (failure !== undefined) throw failure;
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      controller.abort();
      taken?.();
    }
  }
}

function infoFrom(view: ProcessView): ProcessInfo {
  return {
    pid: view.pid,
    tag: view.tag,
    command: view.command,
    argv: view.argv,
    cwd: view.cwd,
    pty: view.pty,
    running: view.running,
    exitCode: view.exit_code,
    timedOut: view.timed_out,
    startedAt: view.started_at,
    endedAt: view.ended_at,
  };
}

function eventFrom(event: ServiceOutputEvent): ProcessOutputEvent | undefined {
  switch (event.type) {
    case 'stdout':
    case 'stderr':
      return { type: event.type, data: event.data };
    case 'truncated':
      return { type: 'truncated', droppedBytes: event.dropped_bytes };
    case 'exit':
      return {
        type: 'exit',
        exitCode: event.exit_code,
        timedOut: event.timed_out,
        endedAt: event.ended_at,
      };
    case 'error':
      throw new SandpoolError(event.error.code as ErrorCode, event.error.message);
    case 'start':
      return undefined; // the SDK's stream does not show it either
  }
}

import { SandpoolError } from '../../errors/sandpool-error.js';
import type {
  BackgroundProcess,
  DirectoryWatch,
  ProcessEvents,
  ProcessSignal,
  ProcessSpec,
  SandboxProcesses,
  TerminalSize,
  WatchEvent,
  WatchEvents,
} from '../sandbox-processes.js';
import type { AgentChannel, AgentClient } from './agent-client.js';
import {
  AgentProtocolError,
  encodeAck,
  parseJsonPayload,
  type AgentFrame,
} from './agent-protocol.js';

/** Frames of background processes and watches (the agent's "issue 12" section). */
export const ProcessRequestType = {
  start: 0x30,
  stdin: 0x31,
  stdinEnd: 0x32,
  signal: 0x33,
  resize: 0x34,
  /** Acknowledges output (or watch event) bytes, as `ack` does for an exec. */
  ack: 0x35,
  kill: 0x36,
  watchStart: 0x38,
  watchStop: 0x39,
} as const;

export const ProcessReplyType = {
  started: 0xb0,
  stdout: 0xb1,
  stderr: 0xb2,
  exit: 0xb3,
  error: 0xb4,
  watchReady: 0xb8,
  watchEvents: 0xb9,
  watchEnd: 0xba,
} as const;

export interface AgentProcessLimits {
  /**
   * Output bytes per second a process may push into the worker before its acknowledgements are
   * held back: a `yes` would otherwise cost the worker a core for as long as it runs.
   */
  maxOutputBytesPerSecond: number;
  /** Events in one frame of a watch; an honest agent sends one read of inotify's queue. */
  maxEventsPerFrame: number;
}

export const DEFAULT_AGENT_PROCESS_LIMITS: AgentProcessLimits = {
  maxOutputBytesPerSecond: 16 * 1024 * 1024,
  maxEventsPerFrame: 4096,
};

const WATCH_TYPES = new Set(['create', 'write', 'remove', 'rename', 'chmod', 'overflow']);
const MAX_PID = 1 << 22; // Linux's pid_max ceiling
const MAX_NAME_CHARS = 4096;

/**
 * Background processes and watches over an agent connection. Each is one long-lived request id
 * (`AgentClient.openChannel`); everything the agent says on it is checked, and output beyond the
 * window or malformed frames end the connection (the session answers 410).
 */
export class AgentProcesses implements SandboxProcesses {
  private readonly limits: AgentProcessLimits;

  constructor(
    private readonly client: AgentClient,
    limits: Partial<AgentProcessLimits> = {},
  ) {
    this.limits = { ...DEFAULT_AGENT_PROCESS_LIMITS, ...limits };
  }

  start(spec: ProcessSpec, events: ProcessEvents): Promise<BackgroundProcess> {
    const { maxOutputBytesPerSecond } = this.limits;
    return new Promise<BackgroundProcess>((resolve, reject) => {
      let state: 'starting' | 'running' | 'ended' = 'starting';
      let unacked = 0;
      let heldAck = 0;
      let sliceStartMs = 0;
      let sliceBytes = 0;
      let ackTimer: NodeJS.Timeout | undefined;
      let graceTimer: NodeJS.Timeout | undefined;

      const end = () => {
        state = 'ended';
        clearTimeout(ackTimer);
        clearTimeout(graceTimer);
        channel.close();
      };
      const flushAck = () => {
        ackTimer = undefined;
        if (state !== 'running' || heldAck === 0) return;
        channel.send(ProcessRequestType.ack, ackPayload(heldAck));
        unacked -= heldAck;
        heldAck = 0;
      };
      const acknowledge = (size: number) => {
        const now = performance.now();
        if (now - sliceStartMs >= 1000) {
          sliceStartMs = now;
          sliceBytes = 0;
        }
        sliceBytes += size;
        heldAck += size;
        if (ackTimer !== undefined) return;
        if (sliceBytes <= maxOutputBytesPerSecond) flushAck();
        else ackTimer = setTimeout(flushAck, Math.max(1, sliceStartMs + 1000 - now));
      };

      const handler = {
        onFrame: (frame: AgentFrame) => {
          if (state === 'ended') return;
          if (state === 'starting') {
            if (frame.type === ProcessReplyType.started) {
              const pid = parseJsonPayload(frame.payload).pid;
              if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 2 || pid > MAX_PID) {
                throw new AgentProtocolError('a process start without a valid pid');
              }
              state = 'running';
              resolve(handle(pid));
            } else if (frame.type === ProcessReplyType.error) {
              end();
              reject(startError(frame.payload, spec.argv[0] ?? ''));
            } else {
              throw new AgentProtocolError(`unexpected frame type ${frame.type} before a start`);
            }
            return;
          }
          switch (frame.type) {
            case ProcessReplyType.stdout:
            case ProcessReplyType.stderr: {
              const size = frame.payload.length;
              unacked += size;
              if (unacked > channel.limits.windowBytes + channel.limits.maxFrameBytes) {
                throw new AgentProtocolError(`${unacked} unacknowledged process output bytes`);
              }
              events.onOutput(
                frame.type === ProcessReplyType.stdout ? 'stdout' : 'stderr',
                frame.payload,
              );
              acknowledge(size);
              return;
            }
            case ProcessReplyType.exit: {
              const body = parseJsonPayload(frame.payload);
              const code = body.code;
              if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 255) {
                throw new AgentProtocolError('a process exit without a valid code');
              }
              const signal =
                typeof body.signal === 'number' && Number.isInteger(body.signal)
                  ? body.signal
                  : undefined;
              end();
              events.onExit(code, signal);
              return;
            }
            case ProcessReplyType.error:
              return; // stdin the process did not read was dropped; nothing to tell
            default:
              throw new AgentProtocolError(`unexpected frame type ${frame.type} for a process`);
          }
        },
        fail: (error: Error) => {
          if (state === 'ended') return;
          const wasStarting = state === 'starting';
          state = 'ended';
          clearTimeout(ackTimer);
          clearTimeout(graceTimer);
          if (wasStarting) reject(error);
          else events.onLost(error);
        },
      };
      // The handlers above only run after openChannel returned.
      const channel: AgentChannel = this.client.openChannel(handler);

      const handle = (pid: number): BackgroundProcess => ({
        pid,
        writeStdin: (data) => {
          if (state !== 'running') return;
          const chunk = channel.limits.uploadChunkBytes;
          for (let offset = 0; offset < data.length; offset += chunk) {
            channel.send(ProcessRequestType.stdin, data.subarray(offset, offset + chunk));
          }
        },
        endStdin: () => {
          if (state === 'running') channel.send(ProcessRequestType.stdinEnd);
        },
        signal: (name: ProcessSignal) => {
          if (state === 'running') channel.send(ProcessRequestType.signal, { signal: name });
        },
        resize: (size: TerminalSize) => {
          if (state === 'running') channel.send(ProcessRequestType.resize, size);
        },
        kill: () => {
          if (state !== 'running' || graceTimer !== undefined) return;
          channel.send(ProcessRequestType.kill);
          // The agent reports the exit once the group is dead; if it never does, stop waiting.
          graceTimer = setTimeout(() => {
            if (state !== 'running') return;
            end();
            events.onExit(137, 9);
          }, channel.limits.killGraceMs);
        },
      });

      channel.send(ProcessRequestType.start, {
        argv: spec.argv,
        cwd: spec.cwd,
        env: spec.env,
        stdin: spec.stdin,
        pty: spec.pty ?? null,
      });
    });
  }

  watch(path: string, recursive: boolean, events: WatchEvents): Promise<DirectoryWatch> {
    const { maxEventsPerFrame } = this.limits;
    return new Promise<DirectoryWatch>((resolve, reject) => {
      let state: 'starting' | 'watching' | 'ended' = 'starting';
      let unacked = 0;
      let delivery: Promise<void> = Promise.resolve();
      const end = () => {
        state = 'ended';
        channel.close();
      };
      const stop = () => {
        if (state === 'ended') return;
        channel.send(ProcessRequestType.watchStop);
        end();
      };

      const channel: AgentChannel = this.client.openChannel({
        onFrame: (frame) => {
          if (state === 'ended') return;
          if (state === 'starting') {
            if (frame.type === ProcessReplyType.watchReady) {
              state = 'watching';
              resolve({ stop });
            } else if (frame.type === ProcessReplyType.error) {
              end();
              reject(watchError(frame.payload, path));
            } else {
              throw new AgentProtocolError(`unexpected frame type ${frame.type} before a watch`);
            }
            return;
          }
          if (frame.type === ProcessReplyType.watchEvents) {
            const size = frame.payload.length;
            unacked += size;
            if (unacked > channel.limits.windowBytes + channel.limits.maxFrameBytes) {
              throw new AgentProtocolError(`${unacked} unacknowledged watch event bytes`);
            }
            const batch = parseEvents(frame.payload, maxEventsPerFrame);
            delivery = delivery.then(async () => {
              if (state !== 'watching') return;
              try {
                await events.onEvents(batch);
              } catch {
                stop();
                return;
              }
              unacked -= size;
              // Acknowledged once delivered: a slow client holds the watch back, not the worker.
              if (state === 'watching') channel.send(ProcessRequestType.ack, ackPayload(size));
            });
          } else if (frame.type === ProcessReplyType.watchEnd) {
            const reason = parseJsonPayload(frame.payload).reason;
            end();
            const text = typeof reason === 'string' ? reason.slice(0, 200) : 'ended';
            void delivery.then(() => events.onEnd(text));
          } else {
            throw new AgentProtocolError(`unexpected frame type ${frame.type} for a watch`);
          }
        },
        fail: (error) => {
          if (state === 'ended') return;
          const wasStarting = state === 'starting';
          state = 'ended';
          if (wasStarting) reject(error);
          else events.onLost(error);
        },
      });
      channel.send(ProcessRequestType.watchStart, { path, recursive });
    });
  }
}

function ackPayload(count: number): Buffer {
  // The ack frame's payload is the u32 count; reuse the exec ack's encoding.
  return encodeAck(0, count).subarray(9);
}

function parseEvents(payload: Buffer, maxEvents: number): WatchEvent[] {
  const raw = parseJsonPayload(payload).events;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > maxEvents) {
    throw new AgentProtocolError('a watch frame without a valid list of events');
  }
  return raw.map((item: unknown) => {
    if (!Array.isArray(item) || item.length !== 3) {
      throw new AgentProtocolError('a malformed watch event');
    }
    const [type, name, isDir] = item as unknown[];
    if (
      typeof type !== 'string' ||
      !WATCH_TYPES.has(type) ||
      typeof name !== 'string' ||
      name.length > MAX_NAME_CHARS ||
      typeof isDir !== 'boolean'
    ) {
      throw new AgentProtocolError('a malformed watch event');
    }
    return { type: type as WatchEvent['type'], name, isDir };
  });
}

function errnoOf(payload: Buffer): { errno: string; message: string } {
  const body = parseJsonPayload(payload);
  return {
    errno: typeof body.errno === 'string' ? body.errno.slice(0, 32) : 'EIO',
    message: typeof body.message === 'string' ? body.message.slice(0, 500) : 'unknown error',
  };
}

function startError(payload: Buffer, program: string): SandpoolError {
  const { errno, message } = errnoOf(payload);
  const hint =
    errno === 'ENOENT'
      ? ' (check the program name and that cwd exists)'
      : errno === 'EACCES'
        ? ' (the program is not executable by the sandbox user)'
        : '';
  return new SandpoolError(
    'invalid_request',
    `The process could not start: ${program}: ${errno} ${message}${hint}.`,
  );
}

function watchError(payload: Buffer, path: string): SandpoolError {
  const { errno, message } = errnoOf(payload);
  switch (errno) {
    case 'ENOENT':
      return new SandpoolError('file_not_found', `No directory at ${path} in the sandbox.`);
    case 'ENOTDIR':
      return new SandpoolError('invalid_path', `${path} is not a directory; watch a directory.`);
    case 'EACCES':
    case 'EPERM':
      return new SandpoolError('invalid_path', `The sandbox user may not watch ${path}.`);
    default:
      return new SandpoolError(
        'invalid_request',
        `Could not watch ${path}: ${errno} ${message}. Watch fewer or smaller trees.`,
      );
  }
}

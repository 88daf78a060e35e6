import { SandpoolError } from '../errors/sandpool-error.js';
import { SANDBOX_HOME } from '../files/sandbox-path.js';
import type { Sandbox } from '../runtime/sandbox-runtime.js';
import { BridgeLineReader, BridgeLineTooLongError } from './bridge-line-reader.js';
import { readBridgeLine, type BridgeLine } from './code-event.js';

/** Where the code-interpreter template puts the bridge and its socket (see its Dockerfile). */
export const BRIDGE_PROGRAM = '/opt/sandpool/sandpool_kernel_bridge.py';
export const BRIDGE_SOCKET = '/tmp/.sandpool/kernel.sock';

/** socat waits this long (s) for the bridge after sending the request: the call's end decides. */
const RELAY_HALF_CLOSE_S = '86400';
const RELAY_ARGV = ['socat', '-t', RELAY_HALF_CLOSE_S, '-', `UNIX-CONNECT:${BRIDGE_SOCKET}`];
const START_ARGV = ['python3', '-I', '-B', BRIDGE_PROGRAM, '--detach'];
const MISSING_PROGRAM = 127;
/** python3's status for a script it cannot open. */
const MISSING_SCRIPT = 2;

export interface KernelBridgeClientOptions {
  /** Longest line (one event) accepted from the bridge. */
  maxLineBytes: number;
  /** Longest string field kept of an event; longer text is cut, longer images left out. */
  maxFieldBytes: number;
  /** How long a bridge started on demand may take to answer. */
  startTimeoutMs: number;
  /** Waits between connection attempts while a bridge starts (injected in tests). */
  sleep?: (ms: number) => Promise<void>;
}

export interface BridgeCall {
  /** The request object: `op` and its fields. */
  request: Record<string, unknown>;
  /** The whole call's limit; the bridge applies the cell's own timeout inside it. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Each checked line as it arrives; a returned promise holds the bridge back (backpressure). */
  onLine(line: BridgeLine): void | Promise<void>;
}

export type BridgeCallOutcome =
  /** The bridge answered to the end (an `end`, `ok` or `failure` line). */
  | { kind: 'answered' }
  /** It stopped mid-answer (died, was killed, or said too much), after `lines` lines. */
  | { kind: 'broken'; reason: string; lines: number };

/**
 * Talks to the kernel bridge inside a sandbox. Each call is one command run by the in-sandbox
 * agent, `socat` between its stdio and the bridge's Unix socket, so a call costs a process spawn
 * and needs no change to the agent's protocol. A bridge that is not running (not pre-started, or
 * it died) is started on demand. Everything it says is checked and bounded.
 */
export class KernelBridgeClient {
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: KernelBridgeClientOptions) {
    this.sleep =
      options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()));
  }

  async call(sandbox: Sandbox, call: BridgeCall): Promise<BridgeCallOutcome> {
    const first = await this.relay(sandbox, call);
    if (first.kind !== 'unreachable') return first;
    if (first.exitCode === MISSING_PROGRAM) throw noInterpreter();
    await this.start(sandbox, call.signal);
    const deadline = Date.now() + this.options.startTimeoutMs;
    for (let wait = 20; ; wait = Math.min(wait * 2, 250)) {
      await this.sleep(wait);
      if (call.signal?.aborted === true) throw clientGone();
      const next = await this.relay(sandbox, call);
      if (next.kind !== 'unreachable') return next;
      if (Date.now() > deadline) {
        throw new SandpoolError(
          'runtime_unavailable',
          `The code interpreter of this sandbox did not start within ${this.options.startTimeoutMs} ms (${next.stderr.trim() || 'no answer'}); retry, or create a new session.`,
          1,
        );
      }
    }
  }

  private async start(sandbox: Sandbox, signal: AbortSignal | undefined): Promise<void> {
    // It detaches at once; whether it came up shows in the connection attempts that follow.
    const outcome = await sandbox.exec(
      { argv: START_ARGV, cwd: SANDBOX_HOME, timeoutMs: 10_000, signal },
      { onStdout: () => undefined, onStderr: () => undefined },
    );
    if (outcome.exitCode === MISSING_PROGRAM || outcome.exitCode === MISSING_SCRIPT) {
      throw noInterpreter();
    }
  }

  private async relay(
    sandbox: Sandbox,
    call: BridgeCall,
  ): Promise<BridgeCallOutcome | { kind: 'unreachable'; exitCode: number; stderr: string }> {
    const reader = new BridgeLineReader(this.options.maxLineBytes);
    const stop = new AbortController();
    const signal = call.signal ? AbortSignal.any([call.signal, stop.signal]) : stop.signal;
    let lines = 0;
    let answered = false;
    let broken: string | undefined;
    let stderr = '';
    const outcome = await sandbox.exec(
      {
        argv: RELAY_ARGV,
        cwd: SANDBOX_HOME,
        stdin: Buffer.from(JSON.stringify(call.request)),
        timeoutMs: call.timeoutMs,
        signal,
      },
      {
        onStdout: async (chunk) => {
          if (answered || broken !== undefined) return; // anything after the last line is ignored
          let values: unknown[];
          try {
            values = reader.push(chunk);
          } catch (error) {
            if (!(error instanceof BridgeLineTooLongError)) throw error;
            broken = error.message;
            stop.abort();
            return;
          }
          for (const value of values) {
            const line = readBridgeLine(value, this.options.maxFieldBytes);
            if (line === undefined || answered) continue;
            lines += 1;
            if (line.kind !== 'event') answered = true;
            await call.onLine(line);
          }
        },
        onStderr: (chunk) => {
          if (stderr.length < 1024) stderr += chunk.toString('utf8', 0, 1024);
        },
      },
    );
    if (call.signal?.aborted === true) throw clientGone();
    if (answered) return { kind: 'answered' };
    if (broken !== undefined) return { kind: 'broken', reason: broken, lines };
    if (outcome.timedOut) {
      return { kind: 'broken', reason: `no answer within ${call.timeoutMs} ms`, lines };
    }
    if (lines === 0 && outcome.exitCode !== 0) {
      return { kind: 'unreachable', exitCode: outcome.exitCode, stderr };
    }
    return { kind: 'broken', reason: `it stopped (status ${outcome.exitCode})`, lines };
  }
}

/** Nobody reads this answer; a 4xx keeps it out of the error log. */
function clientGone(): SandpoolError {
  return new SandpoolError('invalid_request', 'The client went away before the call finished.');
}

function noInterpreter(): SandpoolError {
  return new SandpoolError(
    'invalid_request',
    'This session has no code interpreter: its image lacks the kernel bridge. Create the session with {"template": "code-interpreter"} (a worker serving that template).',
  );
}

import type { Duplex } from 'node:stream';
import { SandpoolError } from '../errors/sandpool-error.js';
import { SANDBOX_HOME } from '../files/sandbox-path.js';
import type { Sandbox } from '../runtime/sandbox-runtime.js';
import { BridgeLineReader, BridgeLineTooLongError } from './bridge-line-reader.js';
import { readBridgeLine, type BridgeLine } from './code-event.js';

/** Where the code-interpreter template puts the bridge and its socket (see its Dockerfile). */
export const BRIDGE_PROGRAM = '/opt/sandpool/sandpool_kernel_bridge.py';
export const BRIDGE_SOCKET = '/tmp/.sandpool/kernel.sock';
/** The bridge's port inside the sandbox (E2B's code-interpreter port), reached by a tunnel. */
export const BRIDGE_PORT = 49999;

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
 * Talks to the kernel bridge inside a sandbox: each call is one connection to it, over the
 * in-sandbox agent's TCP tunnel (no process spawned), or, without tunnels, one `socat` run by the
 * agent between its stdio and the bridge's Unix socket. A bridge that is not running (not
 * pre-started, or it died) is started on demand. Everything it says is checked and bounded.
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

  /**
   * One call over the agent's tunnel to the bridge's port when the sandbox has tunnels and the
   * bridge listens there; else through `socat` to its socket (older images and agents).
   */
  private async relay(sandbox: Sandbox, call: BridgeCall): Promise<RelayOutcome> {
    const tunnel = await this.openTunnel(sandbox);
    return tunnel !== undefined
      ? this.relayOverTunnel(tunnel, call)
      : this.relayThroughSocat(sandbox, call);
  }

  private async openTunnel(sandbox: Sandbox): Promise<Duplex | undefined> {
    if (sandbox.tunnels === undefined) return undefined;
    try {
      return await sandbox.tunnels.open(BRIDGE_PORT);
    } catch (error) {
      if (error instanceof SandpoolError && error.code === 'port_not_listening') return undefined;
      throw error;
    }
  }

  private async relayOverTunnel(tunnel: Duplex, call: BridgeCall): Promise<RelayOutcome> {
    const answer = new AnswerReader(this.options, call);
    let timedOut = false;
    const close = () => tunnel.destroy();
    const timer = setTimeout(() => {
      timedOut = true;
      close();
    }, call.timeoutMs);
    call.signal?.addEventListener('abort', close, { once: true });
    try {
      // A newline ends the request; our side stays open, so closing it tells the bridge that
      // the call was given up (it then interrupts the cell).
      tunnel.write(`${JSON.stringify(call.request)}\n`);
      // Reading by iteration holds the bridge back while onLine waits (backpressure).
      for await (const chunk of tunnel) {
        await answer.push(chunk as Buffer);
        if (answer.done) break;
      }
    } catch {
      // A reset or a destroyed tunnel: what arrived decides below.
    } finally {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', close);
      tunnel.destroy();
    }
    if (call.signal?.aborted === true) throw clientGone();
    if (answer.answered) return { kind: 'answered' };
    if (answer.broken !== undefined)
      return { kind: 'broken', reason: answer.broken, lines: answer.lines };
    if (timedOut)
      return {
        kind: 'broken',
        reason: `no answer within ${call.timeoutMs} ms`,
        lines: answer.lines,
      };
    return {
      kind: 'broken',
      reason: 'it closed the connection before the end',
      lines: answer.lines,
    };
  }

  private async relayThroughSocat(sandbox: Sandbox, call: BridgeCall): Promise<RelayOutcome> {
    const answer = new AnswerReader(this.options, call);
    const stop = new AbortController();
    const signal = call.signal ? AbortSignal.any([call.signal, stop.signal]) : stop.signal;
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
          await answer.push(chunk);
          if (answer.broken !== undefined) stop.abort();
        },
        onStderr: (chunk) => {
          if (stderr.length < 1024) stderr += chunk.toString('utf8', 0, 1024);
        },
      },
    );
    const { lines } = answer;
    if (call.signal?.aborted === true) throw clientGone();
    if (answer.answered) return { kind: 'answered' };
    if (answer.broken !== undefined) return { kind: 'broken', reason: answer.broken, lines };
    if (outcome.timedOut) {
      return { kind: 'broken', reason: `no answer within ${call.timeoutMs} ms`, lines };
    }
    if (lines === 0 && outcome.exitCode !== 0) {
      return { kind: 'unreachable', exitCode: outcome.exitCode, stderr };
    }
    return { kind: 'broken', reason: `it stopped (status ${outcome.exitCode})`, lines };
  }
}

type RelayOutcome = BridgeCallOutcome | { kind: 'unreachable'; exitCode: number; stderr: string };

/** The bridge's answer as it arrives: checked lines handed on, until the last or a fault. */
class AnswerReader {
  lines = 0;
  answered = false;
  broken: string | undefined;
  private readonly reader: BridgeLineReader;

  constructor(
    private readonly options: KernelBridgeClientOptions,
    private readonly call: BridgeCall,
  ) {
    this.reader = new BridgeLineReader(options.maxLineBytes);
  }

  get done(): boolean {
    return this.answered || this.broken !== undefined;
  }

  async push(chunk: Buffer): Promise<void> {
    if (this.done) return; // anything after the last line is ignored
    let values: unknown[];
    try {
      values = this.reader.push(chunk);
    } catch (error) {
      if (!(error instanceof BridgeLineTooLongError)) throw error;
      this.broken = error.message;
      return;
    }
    for (const value of values) {
      const line = readBridgeLine(value, this.options.maxFieldBytes);
      if (line === undefined || this.answered) continue;
      this.lines += 1;
      if (line.kind !== 'event') this.answered = true;
      await this.call.onLine(line);
    }
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

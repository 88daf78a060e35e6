import type { Readable, Writable } from 'node:stream';
import type {
  ExecOutcome,
  ExecRequest,
  ExecSinks,
  FileEntry,
  FileStat,
} from '../sandbox-runtime.js';
import {
  AgentConnection,
  type AgentConnectionOptions,
  type AgentLimits,
  type PendingRequest,
} from './agent-connection.js';
import { agentExec } from './agent-exec.js';
import {
  agentListFiles,
  agentReadFile,
  agentRemoveFile,
  agentStatFile,
  agentWriteFile,
} from './agent-files.js';
import { encodeFrame, ReplyType, RequestType } from './agent-protocol.js';

export { DEFAULT_AGENT_LIMITS, type AgentLimits } from './agent-connection.js';
export { mapFileError } from './agent-errors.js';

export type AgentClientOptions = AgentConnectionOptions;

/** Receives a channel's frames; throwing an AgentProtocolError ends the connection. */
export type AgentChannelHandler = PendingRequest;

/** A long-lived request (see `AgentClient.openChannel`). */
export interface AgentChannel {
  readonly limits: AgentLimits;
  send(type: number, payload?: Uint8Array | object): void;
  /** Stops routing frames to the handler (later ones count as strays). */
  close(): void;
}

/**
 * The worker's side of one agent: the runtime interface's operations over one connection
 * (`agent-connection.ts`: ids, bounds, watchdog), with exec in `agent-exec.ts` and files in
 * `agent-files.ts`. Transport-agnostic: the caller feeds received bytes to `receive()` and
 * reports the end of the stream with `end()`.
 */
export class AgentClient {
  private readonly connection: AgentConnection;

  constructor(options: AgentClientOptions) {
    this.connection = new AgentConnection(options);
  }

  /** Why the connection is gone, or undefined while it works. */
  get lost(): string | undefined {
    return this.connection.lost;
  }

  /** Requests in flight, and whether the watchdog timer runs (what an abandoned one would leak). */
  get inFlight(): { requests: number; watchdog: boolean } {
    return { requests: this.connection.pendingCount, watchdog: this.connection.watching };
  }

  /** Bytes from the agent; a returned promise asks the transport to pause until it settles. */
  receive(chunk: Buffer): Promise<void> | undefined {
    return this.connection.receive(chunk);
  }

  /** The transport ended: every pending and future request fails with `session_lost`. */
  end(reason: string): void {
    this.connection.end(reason);
  }

  /** Waits for the agent's greeting; rejects when it does not answer within `timeoutMs`. */
  async hello(timeoutMs: number): Promise<{ version: number; pid: number }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the agent did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const reply = await Promise.race([
        this.connection.call(RequestType.hello, {}, ReplyType.hello),
        timeout,
      ]);
      return { version: Number(reply.version), pid: Number(reply.pid) };
    } finally {
      clearTimeout(timer);
    }
  }

  exec(request: ExecRequest, sinks: ExecSinks): Promise<ExecOutcome> {
    return agentExec(this.connection, request, sinks);
  }

  writeFile(path: string, content: Readable): Promise<number> {
    return agentWriteFile(this.connection, path, content);
  }

  statFile(path: string): Promise<FileStat | undefined> {
    return agentStatFile(this.connection, path);
  }

  readFile(path: string, destination: Writable): Promise<void> {
    return agentReadFile(this.connection, path, destination);
  }

  listFiles(path: string): Promise<FileEntry[]> {
    return agentListFiles(this.connection, path);
  }

  removeFile(path: string): Promise<void> {
    return agentRemoveFile(this.connection, path);
  }

  /**
   * A request that lives as long as a background process or a watch (agent-processes.ts): the
   * agent's frames for its id go to `handler` until `close()`, under the same bounds as any other.
   */
  openChannel(handler: AgentChannelHandler): AgentChannel {
    const connection = this.connection;
    const id = connection.open(handler);
    return {
      limits: connection.limits,
      send: (type, payload) => connection.send(encodeFrame(type, id, payload)),
      close: () => connection.release(id),
    };
  }

  /** Fails every pending request and refuses new ones (the sandbox is being destroyed). */
  close(): void {
    this.connection.close();
  }
}

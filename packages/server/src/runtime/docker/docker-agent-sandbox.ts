import type { Duplex, Readable, Writable } from 'node:stream';
import type Docker from 'dockerode';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type { Logger } from 'pino';
import { AgentClient, type AgentLimits } from '../agent/agent-client.js';
import type { ChannelBudget } from '../agent/agent-channel-budget.js';
import { AgentProcesses } from '../agent/agent-processes.js';
import type { SandboxProcesses } from '../sandbox-processes.js';
import { AgentTunnels } from '../agent/agent-tunnel.js';
import type { SandboxTunnels } from '../sandbox-tunnels.js';
import type {
  ExecOutcome,
  ExecRequest,
  ExecSinks,
  FileEntry,
  FileStat,
  Sandbox,
  SandboxLabels,
} from '../sandbox-runtime.js';
import { demuxDockerStream } from './docker-stream-demuxer.js';
import { translateDockerError } from './docker-errors.js';
import { isContainerRunning, removeContainer } from './docker-container.js';

/** What the agent wrote to stderr is kept (the tail) to explain a lost connection. */
const STDERR_TAIL_BYTES = 4096;

export interface DockerAgentSandboxOptions {
  /** How long a fresh agent may take to answer its greeting. */
  helloTimeoutMs: number;
  limits?: Partial<AgentLimits>;
  /** Shared by every sandbox of the worker: what all agent channels together may cost. */
  workerBudget?: ChannelBudget;
  /** Where a channel that ends for misbehaviour is reported, with its reason. */
  log?: Pick<Logger, 'warn'>;
}

/**
 * A container whose long-lived process is the sandpool agent, reached over the container's
 * attached stdio (one hijacked Engine API attach, no network): an exec costs a process spawn in
 * the sandbox instead of a `docker exec`. The agent shares a uid with the sandbox's code, so
 * everything it sends is bounded by the AgentClient; when the attach ends (the agent was killed,
 * the container stopped), every operation fails with `session_lost`.
 */
export class DockerAgentSandbox implements Sandbox {
  private destroyed = false;
  private stderrTail = Buffer.alloc(0);
  private stream: Duplex | undefined;
  private readonly client: AgentClient;
  readonly processes: SandboxProcesses;
  readonly tunnels: SandboxTunnels;

  private constructor(
    private readonly container: Docker.Container,
    readonly id: string,
    readonly labels: SandboxLabels,
    private readonly options: DockerAgentSandboxOptions,
    /** Resolves once frames can be written (the stream is attached). */
    private readonly connected: Promise<void>,
  ) {
    this.client = new AgentClient({
      send: async (frame) => {
        await this.connected;
        return writeFrame(this.stream as Duplex, frame);
      },
      limits: options.limits,
      workerBudget: options.workerBudget,
      onLost: (reason) => this.onLost(reason),
    });
    this.processes = new AgentProcesses(this.client);
    this.tunnels = new AgentTunnels(this.client);
  }

  /**
   * Attaches to a created (not yet started) container, starts it and waits for the agent's
   * greeting. Attaching first means no byte the agent writes is missed.
   */
  static async start(
    container: Docker.Container,
    labels: SandboxLabels,
    options: DockerAgentSandboxOptions,
  ): Promise<DockerAgentSandbox> {
    let stream: Duplex;
    try {
      stream = (await container.attach({
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        hijack: true,
      })) as unknown as Duplex;
    } catch (error) {
      throw translateDockerError(error, 'attaching to a sandbox');
    }
    const owner = new DockerAgentSandbox(
      container,
      container.id,
      labels,
      options,
      Promise.resolve(),
    );
    owner.read(stream);
    try {
      await container.start();
      await owner.client.hello(options.helloTimeoutMs);
    } catch (error) {
      stream.destroy();
      await removeContainer(container).catch(() => undefined);
      if (error instanceof SandpoolError) throw error;
      throw translateDockerError(error, 'starting a sandbox and its agent');
    }
    return owner;
  }

  /**
   * A running container whose agent's attach died with an earlier worker (re-adoption after a
   * restart): a fresh agent is started in it through one `docker exec` whose stdio is attached,
   * so the session keeps the agent path. Returns at once; operations wait for the connection,
   * and fail with `session_lost` when the agent cannot be started.
   */
  static adopt(
    container: Docker.Container,
    labels: SandboxLabels,
    options: DockerAgentSandboxOptions,
  ): DockerAgentSandbox {
    let connect: (stream: Duplex) => void = () => undefined;
    let refuse: (error: Error) => void = () => undefined;
    const connected = new Promise<Duplex>((resolve, reject) => {
      connect = resolve;
      refuse = reject;
    });
    const owner = new DockerAgentSandbox(
      container,
      container.id,
      labels,
      options,
      connected.then(() => undefined),
    );
    connected.catch(() => undefined); // observed through the client's lost reason
    void (async () => {
      try {
        const info = await container.inspect();
        const agentCommand = info.Config.Cmd ?? [];
        if (agentCommand.length === 0) throw new Error('the image names no agent command');
        const exec = await container.exec({
          Cmd: agentCommand,
          User: '1000:1000',
          AttachStdin: true,
          AttachStdout: true,
          AttachStderr: true,
          Tty: false,
        });
        const stream = await exec.start({ hijack: true, stdin: true });
        if (owner.destroyed) {
          stream.destroy();
          throw new Error('the sandbox was destroyed meanwhile');
        }
        owner.read(stream);
        connect(stream);
        await owner.client.hello(options.helloTimeoutMs);
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        refuse(error instanceof Error ? error : new Error(why));
        owner.client.end(`could not be started again after a worker restart (${why})`);
      }
    })();
    return owner;
  }

  /** Requests in flight to the agent (an abandoned download must leave none). */
  get inFlight(): { requests: number; watchdog: boolean } {
    return this.client.inFlight;
  }

  /** Reads the agent's side of `stream`: stdout is the protocol, stderr is kept to explain. */
  private read(stream: Duplex): void {
    this.stream = stream;
    stream.on('error', () => undefined); // the end of the stream reports the loss below
    void demuxDockerStream(stream as unknown as Readable, (kind, payload) => {
      if (kind === 'stdout') return this.client.receive(payload);
      this.keepStderr(payload);
      return undefined;
    })
      .catch(() => undefined)
      .then(() => this.client.end(this.endReason()));
  }

  /** A channel that ended while the sandbox was in use is said in the log, with why. */
  private onLost(reason: string): void {
    if (this.destroyed) return;
    this.options.log?.warn(
      { containerId: this.id, sessionId: this.labels['sandpool.session'], reason },
      `sandbox agent channel closed: the agent ${reason}`,
    );
    // Nothing more is read from an agent that broke the rules; the session answers 410.
    this.stream?.destroy();
  }

  exec(request: ExecRequest, sinks: ExecSinks): Promise<ExecOutcome> {
    return this.client.exec(request, sinks);
  }

  writeFile(path: string, content: Readable): Promise<number> {
    return this.client.writeFile(path, content);
  }

  statFile(path: string): Promise<FileStat | undefined> {
    return this.client.statFile(path);
  }

  readFile(path: string, destination: Writable): Promise<void> {
    return this.client.readFile(path, destination);
  }

  listFiles(path: string): Promise<FileEntry[]> {
    return this.client.listFiles(path);
  }

  removeFile(path: string): Promise<void> {
    return this.client.removeFile(path);
  }

  async isAlive(): Promise<boolean> {
    if (this.client.lost !== undefined) return false;
    return isContainerRunning(this.container);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.client.close();
    this.stream?.destroy();
    await removeContainer(this.container);
  }

  private keepStderr(chunk: Buffer): void {
    const joined = Buffer.concat([this.stderrTail, chunk]);
    this.stderrTail = joined.subarray(Math.max(0, joined.length - STDERR_TAIL_BYTES));
  }

  private endReason(): string {
    if (this.destroyed) return 'was closed';
    const said = this.stderrTail.toString('utf8').trim().split('\n').pop() ?? '';
    return `exited (the container stopped or its agent was killed${said ? `: ${said}` : ''})`;
  }
}

/** Writes one frame; resolves once the socket takes more, rejects when it is gone. */
function writeFrame(stream: Duplex, frame: Buffer): Promise<void> {
  if (stream.destroyed || stream.writableEnded) {
    return Promise.reject(new Error('the attach stream is closed'));
  }
  if (stream.write(frame)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', closed);
      resolve();
    };
    const closed = () => {
      stream.off('drain', done);
      reject(new Error('the attach stream closed'));
    };
    stream.once('drain', done);
    stream.once('close', closed);
  });
}

import type { Duplex, Readable, Writable } from 'node:stream';
import type Docker from 'dockerode';
import { SandpoolError } from '../../errors/sandpool-error.js';
import { AgentClient, type AgentLimits } from '../agent/agent-client.js';
import { AgentProcesses } from '../agent/agent-processes.js';
import type { SandboxProcesses } from '../sandbox-processes.js';
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
  readonly processes: SandboxProcesses;

  private constructor(
    private readonly container: Docker.Container,
    readonly id: string,
    readonly labels: SandboxLabels,
    private readonly stream: Duplex,
    private readonly client: AgentClient,
  ) {
    this.processes = new AgentProcesses(client);
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
    const client = new AgentClient({
      send: (frame) => writeFrame(stream, frame),
      limits: options.limits,
    });
    stream.on('error', () => undefined); // the end of the stream reports the loss below
    const owner = new DockerAgentSandbox(container, container.id, labels, stream, client);
    void demuxDockerStream(stream as unknown as Readable, (kind, payload) => {
      if (kind === 'stdout') return client.receive(payload);
      owner.keepStderr(payload);
      return undefined;
    })
      .catch(() => undefined)
      .then(() => client.end(owner.endReason()));
    try {
      await container.start();
      await client.hello(options.helloTimeoutMs);
    } catch (error) {
      stream.destroy();
      await removeContainer(container).catch(() => undefined);
      if (error instanceof SandpoolError) throw error;
      throw translateDockerError(error, 'starting a sandbox and its agent');
    }
    return owner;
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
    this.stream.destroy();
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

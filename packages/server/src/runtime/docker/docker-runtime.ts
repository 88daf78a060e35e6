import Docker from 'dockerode';
import type { Logger } from 'pino';
import { ChannelBudget } from '../agent/agent-channel-budget.js';
import { DEFAULT_WORKER_CHANNEL_LIMITS, type AgentLimits } from '../agent/agent-connection.js';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type {
  Sandbox,
  SandboxLabels,
  SandboxRuntime,
  SandboxSpec,
  SandboxSummary,
} from '../sandbox-runtime.js';
import { SANDBOX_HOME, SANDBOX_HOSTNAME, SANDBOX_TMP } from '../sandbox-layout.js';
import { DockerAgentSandbox } from './docker-agent-sandbox.js';
import { killContainer, removeContainer } from './docker-container.js';
import { DockerSandbox } from './docker-sandbox.js';
import { translateDockerError } from './docker-errors.js';
import { DockerSessionNetworks } from './docker-session-networks.js';
import { SandboxHostsFile } from './sandbox-hosts-file.js';

/** How every sandbox container is confined (SECURITY.md's defaults come from the worker config). */
export interface DockerSandboxLimits {
  image: string;
  memoryMb: number;
  cpus: number;
  pidsLimit: number;
  /** Docker network mode; `none` unless the operator opts in. */
  network: string;
  homeSizeMb: number;
  tmpSizeMb: number;
  /** OCI runtime registered with the engine (`runsc` for gVisor); the engine's default when unset. */
  ociRuntime?: string;
}

export interface DockerRuntimeOptions {
  limits: DockerSandboxLimits;
  /** Defaults to the engine named by DOCKER_HOST or the local socket. */
  docker?: Docker;
  /** Engine calls that take longer than this fail as `runtime_unavailable`. */
  pingTimeoutMs?: number;
  /**
   * `auto` (default): talk to the in-sandbox agent when the image carries the `sandpool.agent=1`
   * label, else use `docker exec`; `never`: always `docker exec` (custom images, baselines).
   */
  agent?: 'auto' | 'never';
  /** How long a fresh agent may take to answer. Default 10 s (a loaded engine starts slowly). */
  agentHelloTimeoutMs?: number;
  /** Where agent channels closed for misbehaviour are reported. */
  log?: Pick<Logger, 'warn'>;
  /** Overrides of what an agent may send (tests; the defaults suit production). */
  agentLimits?: Partial<AgentLimits>;
}

/** The image label that says the image's CMD is the sandpool agent. */
export const AGENT_IMAGE_LABEL = 'sandpool.agent';
/** Image labels are re-read this often, so a rebuilt image is noticed without a restart. */
const IMAGE_LABEL_TTL_MS = 30_000;

const MiB = 1024 * 1024;

/** The Docker Engine API adapter of the runtime interface: the only place that speaks Docker. */
export class DockerRuntime implements SandboxRuntime {
  private readonly docker: Docker;
  private readonly limits: DockerSandboxLimits;
  private readonly pingTimeoutMs: number;
  private readonly agentMode: 'auto' | 'never';
  private readonly agentHelloTimeoutMs: number;
  private imageHasAgent: { value: boolean; readAtMs: number } | undefined;
  /** What every agent channel of this worker may cost together. */
  private readonly channelBudget = new ChannelBudget(DEFAULT_WORKER_CHANNEL_LIMITS);
  private readonly log: Pick<Logger, 'warn'> | undefined;
  private readonly agentLimits: Partial<AgentLimits> | undefined;
  private readonly hostsFile: SandboxHostsFile;

  constructor(options: DockerRuntimeOptions) {
    this.docker = options.docker ?? new Docker();
    this.hostsFile = new SandboxHostsFile(this.docker);
    this.limits = options.limits;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 3000;
    this.agentMode = options.agent ?? 'auto';
    this.agentHelloTimeoutMs = options.agentHelloTimeoutMs ?? 10_000;
    this.log = options.log;
    this.agentLimits = options.agentLimits;
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    const agent = this.agentMode === 'auto' && (await this.usesAgent());
    // Without a network, our own hosts file lets the engine skip the container's network setup.
    const hostsFile =
      spec.network === undefined && this.limits.network === 'none'
        ? this.hostsFile.current()
        : undefined;
    let container: Docker.Container;
    try {
      container = await this.createContainer(spec, agent, hostsFile);
    } catch (error) {
      if (hostsFile === undefined || !isMountRefusal(error)) throw error;
      this.hostsFile.disable();
      this.log?.warn(
        { err: error },
        'the engine cannot mount the sandbox hosts file; using its own',
      );
      container = await this.createContainer(spec, agent, undefined);
    }
    if (agent) {
      return DockerAgentSandbox.start(container, spec.labels, this.agentOptions());
    }
    try {
      await container.start();
    } catch (error) {
      await removeContainer(container).catch(() => undefined);
      throw translateDockerError(error, 'starting a sandbox');
    }
    return new DockerSandbox(container, container.id, spec.labels);
  }

  private async createContainer(
    spec: SandboxSpec,
    agent: boolean,
    hostsFile: string | undefined,
  ): Promise<Docker.Container> {
    const { limits } = this;
    try {
      return await this.docker.createContainer({
        Image: limits.image,
        // The agent is the image's CMD; without one, a process that only keeps the box up.
        ...(agent
          ? {
              OpenStdin: true,
              StdinOnce: false,
              AttachStdin: true,
              AttachStdout: true,
              AttachStderr: true,
              Tty: false,
            }
          : { Cmd: ['sleep', 'infinity'] }),
        User: '1000:1000',
        WorkingDir: SANDBOX_HOME,
        Hostname: SANDBOX_HOSTNAME,
        Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
        Labels: spec.labels,
        // NetworkDisabled only with our hosts file: the engine then mounts an empty one, where
        // `localhost` does not resolve. Network mode `none` alone leaves only the loopback
        // interface. A session with egress (spec.network) sits on its own internal network
        // instead, at a fixed address.
        ...(hostsFile !== undefined ? { NetworkDisabled: true } : {}),
        ...(spec.network
          ? {
              NetworkingConfig: {
                EndpointsConfig: {
                  [spec.network.name]: { IPAMConfig: { IPv4Address: spec.network.address } },
                },
              },
            }
          : {}),
        StopTimeout: 1,
        HostConfig: {
          ...(limits.ociRuntime ? { Runtime: limits.ociRuntime } : {}),
          NetworkMode: spec.network?.name ?? limits.network,
          // The engine writes localhost and ip6-localhost; without a network it adds no line
          // for the hostname, so name it here (on a real network the engine maps it itself).
          ...(hostsFile !== undefined
            ? // A mount, not a bind: a missing source is refused at create, not made a directory.
              {
                Mounts: [{ Type: 'bind', Source: hostsFile, Target: '/etc/hosts', ReadOnly: true }],
              }
            : spec.network === undefined && limits.network === 'none'
              ? { ExtraHosts: [`${SANDBOX_HOSTNAME}:127.0.1.1`] }
              : {}),
          // A dead-end resolver, asked once: lookups fail fast instead of leaking names.
          ...(spec.network
            ? { Dns: spec.network.dns, DnsOptions: ['timeout:1', 'attempts:1'] }
            : {}),
          CapDrop: ['ALL'],
          Privileged: false,
          SecurityOpt: ['no-new-privileges:true'],
          Memory: limits.memoryMb * MiB,
          MemorySwap: limits.memoryMb * MiB,
          NanoCpus: Math.round(limits.cpus * 1e9),
          PidsLimit: limits.pidsLimit,
          ReadonlyRootfs: true,
          Tmpfs: {
            // `exec`: the engine mounts tmpfs noexec by default, and scripts, venvs and
            // compiled programs in the home are the everyday work of a sandbox. nosuid and
            // nodev stay.
            [SANDBOX_HOME]: `rw,exec,nosuid,nodev,size=${limits.homeSizeMb}m,uid=1000,gid=1000,mode=0755`,
            [SANDBOX_TMP]: `rw,exec,nosuid,nodev,size=${limits.tmpSizeMb}m,mode=1777`,
          },
          // docker-init would hold the container's stdio (the agent's channel) as a dumpable
          // process of uid 1000, writable through /proc/1/fd/1: the agent is pid 1 instead, and
          // reaps orphans itself.
          Init: !agent,
          // The agent's stdout is the protocol: logging it would copy every byte once more.
          LogConfig: agent
            ? { Type: 'none', Config: {} }
            : { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
          RestartPolicy: { Name: 'no' },
        },
      });
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) {
        throw new SandpoolError(
          'runtime_unavailable',
          `The sandbox image ${limits.image} is missing; build it with \`npx sandpool image build\`.`,
          30,
          { cause: error },
        );
      }
      throw translateDockerError(error, 'creating a sandbox');
    }
  }

  async list(labels: SandboxLabels): Promise<SandboxSummary[]> {
    try {
      const found = await this.docker.listContainers({
        all: true,
        filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) },
      });
      return found.map((c) => ({ id: c.Id, labels: c.Labels, running: c.State === 'running' }));
    } catch (error) {
      throw translateDockerError(error, 'listing sandboxes');
    }
  }

  /** Whether the configured image's CMD is the agent (its label), re-read every 30 s. */
  private async usesAgent(): Promise<boolean> {
    const now = performance.now();
    if (this.imageHasAgent && now - this.imageHasAgent.readAtMs < IMAGE_LABEL_TTL_MS) {
      return this.imageHasAgent.value;
    }
    let labels: Record<string, string | undefined> = {};
    try {
      const info = await this.docker.getImage(this.limits.image).inspect();
      labels = info.Config.Labels ?? {};
    } catch (error) {
      // A missing image is reported by the create that follows, with a helpful message.
      if ((error as { statusCode?: number }).statusCode !== 404) {
        throw translateDockerError(error, 'inspecting the sandbox image');
      }
    }
    this.imageHasAgent = { value: labels[AGENT_IMAGE_LABEL] === '1', readAtMs: now };
    return this.imageHasAgent.value;
  }

  /**
   * A handle on a box this runtime created earlier (for re-adoption after a restart). The old
   * attach died with the previous worker, so an agent container gets a fresh agent started
   * through `docker exec` (it keeps the agent path); other images go through `docker exec`.
   */
  attach(summary: SandboxSummary): Sandbox {
    const container = this.docker.getContainer(summary.id);
    if (this.agentMode === 'auto' && summary.labels[AGENT_IMAGE_LABEL] === '1') {
      return DockerAgentSandbox.adopt(container, summary.labels, this.agentOptions());
    }
    return new DockerSandbox(container, summary.id, summary.labels);
  }

  private agentOptions() {
    return {
      helloTimeoutMs: this.agentHelloTimeoutMs,
      workerBudget: this.channelBudget,
      log: this.log,
      limits: this.agentLimits,
    };
  }

  /** Isolated per-session networks on this engine, from the IPv4 range `pool` (egress). */
  sessionNetworks(pool: string): DockerSessionNetworks {
    return new DockerSessionNetworks(this.docker, pool);
  }

  async remove(id: string): Promise<void> {
    await removeContainer(this.docker.getContainer(id));
  }

  async stop(id: string): Promise<void> {
    await killContainer(this.docker.getContainer(id));
  }

  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.docker.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(Object.assign(new Error('ping timed out'), { code: 'ETIMEDOUT' })),
            this.pingTimeoutMs,
          );
        }),
      ]);
    } catch (error) {
      throw translateDockerError(error, 'answering a ping');
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    // dockerode keeps no connections open between requests.
  }
}

/** The engine refused a bind mount (its host does not have our file). */
function isMountRefusal(error: unknown): boolean {
  const { statusCode, message } = error as { statusCode?: number; message?: string };
  return statusCode === 400 && /mount|bind source/i.test(message ?? '');
}

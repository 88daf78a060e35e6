import { jsonRequest } from './json-request.js';

/**
 * The baselines speak the Docker Engine API directly over its unix socket (plain node:http), so
 * they measure the engine and nothing of sandpool. The worker itself only reaches Docker through
 * its runtime adapter.
 */
export class DockerEngine {
  constructor(private readonly socketPath = '/var/run/docker.sock') {}

  /** One API call; resolves to the status and the whole body (JSON-decoded when it is JSON). */
  call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown; raw: Buffer }> {
    return jsonRequest({ socketPath: this.socketPath, path: `/v1.41${path}` }, method, body).then(
      (res) => ({
        status: res.status,
        // Parsed only when it is JSON: some engine answers are streams of text.
        body:
          res.contentType.includes('json') && res.raw.length > 0
            ? (JSON.parse(res.raw.toString('utf8')) as unknown)
            : undefined,
        raw: res.raw,
      }),
    );
  }

  async ok(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await this.call(method, path, body);
    if (res.status >= 300)
      throw new Error(`${method} ${path}: ${res.status} ${res.raw.toString()}`);
    return res.body;
  }

  /** Create + start, hardened like a sandpool sandbox, running `sleep infinity`. */
  async createAndStart(image: string, labels: Record<string, string>): Promise<string> {
    const created = (await this.ok('POST', '/containers/create', {
      Image: image,
      Cmd: ['sleep', 'infinity'],
      User: '1000:1000',
      Labels: labels,
      // As a sandbox is: network mode none with an /etc/hosts (not NetworkDisabled, which mounts
      // none), so the baseline pays for the same network namespace a session does.
      Hostname: 'sandbox',
      HostConfig: { ...sandboxHostConfig(), ExtraHosts: ['sandbox:127.0.1.1'] },
    })) as { Id: string };
    await this.ok('POST', `/containers/${created.Id}/start`);
    return created.Id;
  }

  /** `echo hi` through the Engine API's exec: create, start (output until the end), inspect. */
  async execEcho(id: string): Promise<string> {
    const exec = (await this.ok('POST', `/containers/${id}/exec`, {
      Cmd: ['echo', 'hi'],
      User: '1000:1000',
      AttachStdout: true,
      AttachStderr: true,
    })) as { Id: string };
    const started = await this.call('POST', `/exec/${exec.Id}/start`, {
      Detach: false,
      Tty: false,
    });
    await this.ok('GET', `/exec/${exec.Id}/json`);
    return started.raw.subarray(8).toString('utf8'); // one multiplexed frame: header, then "hi\n"
  }

  async remove(id: string): Promise<void> {
    await this.call('DELETE', `/containers/${id}?force=true&v=true`);
  }

  async listByLabel(label: string): Promise<string[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
    const found = (await this.ok('GET', `/containers/json?all=true&filters=${filters}`)) as {
      Id: string;
    }[];
    return found.map((c) => c.Id);
  }
}

/** The same confinement the worker gives every sandbox (SECURITY.md), for fair baselines. */
export function sandboxHostConfig(): Record<string, unknown> {
  const MiB = 1024 * 1024;
  return {
    NetworkMode: 'none',
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges:true'],
    Memory: 512 * MiB,
    MemorySwap: 512 * MiB,
    NanoCpus: 0.5e9,
    PidsLimit: 256,
    ReadonlyRootfs: true,
    Tmpfs: {
      '/home/sandboxuser': 'rw,exec,nosuid,nodev,size=256m,uid=1000,gid=1000,mode=0755',
      '/tmp': 'rw,exec,nosuid,nodev,size=64m,mode=1777',
    },
    Init: true,
    LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
  };
}

/** The `docker run` flags of the same confinement (the seed's V1 made one container per session). */
export const DOCKER_RUN_FLAGS = [
  '--network=none',
  '--cap-drop=ALL',
  '--security-opt=no-new-privileges:true',
  '--memory=512m',
  '--memory-swap=512m',
  '--cpus=0.5',
  '--pids-limit=256',
  '--read-only',
  '--tmpfs=/home/sandboxuser:rw,exec,nosuid,nodev,size=256m,uid=1000,gid=1000,mode=0755',
  '--tmpfs=/tmp:rw,exec,nosuid,nodev,size=64m,mode=1777',
  '--hostname=sandbox',
  '--add-host=sandbox:127.0.1.1',
  '--init',
  '--user=1000:1000',
];

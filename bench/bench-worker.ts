import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent } from 'node:http';
import { jsonRequest } from './json-request.js';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../packages/server/src/cli/main.ts', import.meta.url));

export interface BenchWorkerOptions {
  port: number;
  workerId: string;
  poolSize: number;
  /** Unset: the worker's default, sized from the host. */
  maxSessions?: number;
  /** `--templates`; default `base` alone (sized by poolSize), so the figures are base's. */
  templates?: string;
  /** The sandbox image (default SANDPOOL_IMAGE or the worker's default). */
  image?: string;
}

/**
 * A worker as its own process (`sandpool serve`, from source through tsx), so the load generator
 * and the worker do not share an event loop, as in production.
 */
export class BenchWorker {
  readonly url: string;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });

  private constructor(
    private readonly child: ChildProcess,
    readonly options: BenchWorkerOptions,
  ) {
    this.url = `http://127.0.0.1:${options.port}`;
  }

  static async start(options: BenchWorkerOptions): Promise<BenchWorker> {
    // SANDPOOL_BENCH_NODE_ARGS, e.g. "--cpu-prof", profiles the worker under load.
    const nodeArgs = (process.env.SANDPOOL_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', CLI, 'serve'], {
      env: {
        ...process.env,
        SANDPOOL_PORT: String(options.port),
        SANDPOOL_WORKER_ID: options.workerId,
        SANDPOOL_POOL_SIZE: String(options.poolSize),
        SANDPOOL_TEMPLATES: options.templates ?? 'base',
        ...(options.maxSessions === undefined
          ? {}
          : { SANDPOOL_MAX_SESSIONS: String(options.maxSessions) }),
        SANDPOOL_LOG_LEVEL: 'warn',
        ...(options.image === undefined ? {} : { SANDPOOL_IMAGE: options.image }),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const worker = new BenchWorker(child, options);
    for (let attempt = 0; attempt < 600; attempt++) {
      if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}`);
      const health = await worker.call('GET', '/health').catch(() => undefined);
      if (health?.status === 200) {
        await worker.waitForPool();
        return worker;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the worker did not come up within 60 s');
  }

  /** Waits until the pool holds its full size again (after sessions took containers from it). */
  async waitForPool(): Promise<void> {
    for (let attempt = 0; attempt < 1200; attempt++) {
      const health = await this.call('GET', '/health');
      if (Number(health.body.pool_size) >= this.options.poolSize) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the pool did not refill within 60 s');
  }

  call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    return jsonRequest(`${this.url}${path}`, method, body, { agent: this.agent }).then((res) => {
      const text = res.raw.toString('utf8');
      return {
        status: res.status,
        body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
      };
    });
  }

  async createSession(path = '/v1/sessions', body: Record<string, unknown> = {}): Promise<string> {
    const res = await this.call('POST', path, body);
    if (res.status !== 201 && res.status !== 200)
      throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
    return String(res.body.session_id);
  }

  async exec(session: string, command: string): Promise<void> {
    const res = await this.call('POST', `/v1/sessions/${session}/exec`, { command });
    if (res.status !== 200 || res.body.stdout !== 'hi\n') {
      throw new Error(`exec: ${res.status} ${JSON.stringify(res.body)}`);
    }
  }

  async deleteSession(session: string): Promise<void> {
    const res = await this.call('DELETE', `/v1/sessions/${session}`);
    if (res.status !== 204) throw new Error(`delete: ${res.status}`);
  }

  /** SIGTERM: the worker destroys its sessions and pool before it exits. */
  async stop(): Promise<void> {
    this.agent.destroy();
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    await once(this.child, 'exit');
  }
}

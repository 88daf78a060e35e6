import { PassThrough, Readable } from 'node:stream';
import {
  executionFrom,
  type ExecResult,
  type Execution,
  type FileEntry,
  type SessionInfo,
} from '@sandpool/client';
import type { CodeService } from '../code/code-service.js';
import { SandpoolError } from '../errors/sandpool-error.js';
import type { ExecService } from '../exec/exec-service.js';
import type { FileService } from '../files/file-service.js';
import type { ProcessService } from '../processes/process-service.js';
import type { SessionManager } from '../sessions/session-manager.js';
import type { McpProcesses, McpSandbox, McpSandboxSource } from './mcp-sandbox.js';
import { ServiceSandboxProcesses } from './service-sandbox-processes.js';

/** The worker's services, which every face of the worker shares. */
export interface WorkerServices {
  sessions: SessionManager;
  exec: ExecService;
  files: FileService;
  /** The code interpreter, where the worker has one. */
  code?: CodeService;
  /** Background processes, where the worker has them. */
  processes?: { processes: ProcessService };
}

/**
 * Sandboxes of this worker, reached in-process: the MCP face calls the same services as the HTTP
 * routes (one set of services, many faces), with the same checks and error codes.
 */
export class ServiceSandboxSource implements McpSandboxSource {
  constructor(private readonly services: WorkerServices) {}

  async create(options: {
    template?: string;
    ttlSeconds?: number;
    metadata: Record<string, string>;
  }): Promise<McpSandbox> {
    const session = await this.services.sessions.create({
      template: options.template,
      ttlSeconds: options.ttlSeconds,
      metadata: options.metadata,
    });
    return new ServiceSandbox(this.services, session.id);
  }

  async connect(sessionId: string): Promise<McpSandbox> {
    this.services.sessions.get(sessionId); // session_not_found or session_lost now, not later
    return new ServiceSandbox(this.services, sessionId);
  }
}

class ServiceSandbox implements McpSandbox {
  private ended = false;
  readonly processes: McpProcesses;

  constructor(
    private readonly services: WorkerServices,
    readonly sessionId: string,
  ) {
    this.processes =
      services.processes === undefined
        ? withoutProcesses()
        : new ServiceSandboxProcesses(services.processes.processes, sessionId);
  }

  get closed(): boolean {
    return this.ended;
  }

  async info(): Promise<SessionInfo> {
    return this.describe();
  }

  async keepAlive(ttlSeconds: number): Promise<SessionInfo> {
    this.services.sessions.keepAlive(this.sessionId, ttlSeconds);
    return this.describe();
  }

  async exec(
    command: string,
    options: { timeoutMs?: number; cwd?: string; stdin?: string },
  ): Promise<ExecResult> {
    const result = await this.services.exec.run(this.sessionId, { command, ...options });
    return {
      stdout: result.stdout,
      stderr: result.stderr,
      exitCode: result.exit_code,
      durationMs: result.duration_ms,
      timedOut: result.timed_out,
      truncated: result.truncated,
    };
  }

  writeFile(path: string, data: string | Uint8Array): Promise<{ path: string; size: number }> {
    return this.services.files.write(this.sessionId, path, Readable.from([Buffer.from(data)]));
  }

  async readFileStream(path: string): Promise<ReadableStream<Uint8Array>> {
    const file = await this.services.files.open(this.sessionId, path);
    const bytes = new PassThrough();
    file.pipeTo(bytes).then(
      () => bytes.end(),
      (error: unknown) => bytes.destroy(error instanceof Error ? error : new Error(String(error))),
    );
    return Readable.toWeb(bytes) as ReadableStream<Uint8Array>;
  }

  async listFiles(path: string): Promise<FileEntry[]> {
    const entries = await this.services.files.list(this.sessionId, path);
    return entries.map((entry) => ({
      name: entry.name,
      type: entry.type,
      size: entry.size,
      mode: Number.parseInt(entry.mode, 8),
      mtime: new Date(entry.mtime),
    }));
  }

  async runCode(
    code: string,
    options: { language?: 'python' | 'bash'; timeoutMs?: number },
  ): Promise<Execution> {
    if (this.services.code === undefined) {
      throw new SandpoolError('invalid_request', 'This worker has no code interpreter.');
    }
    const answer = await this.services.code.run(this.sessionId, { code, ...options });
    // The same reading of the answer as the SDK's, so both faces give the tool one shape.
    return executionFrom(JSON.parse(JSON.stringify(answer)) as Record<string, unknown>);
  }

  /** Ends the session; one already gone (ended elsewhere, or lost) counts as closed, as in the SDK. */
  async close(): Promise<void> {
    if (this.ended) return;
    try {
      await this.services.sessions.delete(this.sessionId);
    } catch (error) {
      const gone =
        error instanceof SandpoolError &&
        (error.code === 'session_not_found' || error.code === 'session_lost');
      if (!gone) throw error;
    }
    this.ended = true;
  }

  private describe(): SessionInfo {
    const { sessions } = this.services;
    const view = sessions.view(sessions.get(this.sessionId));
    return {
      sessionId: view.session_id,
      workerId: view.worker_id,
      template: view.template,
      createdAt: new Date(view.created_at),
      expiresAt: new Date(view.expires_at),
      metadata: view.metadata,
      accessToken: view.access_token,
    };
  }
}

/** A worker built without the process service (some tests) refuses the process tools. */
function withoutProcesses(): McpProcesses {
  const refuse = (): never => {
    throw new SandpoolError('invalid_request', 'This worker has no background processes.');
  };
  return {
    start: async () => refuse(),
    get: async () => refuse(),
    output: () => refuse(),
  };
}

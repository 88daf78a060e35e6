import type { ConnectionOptions } from '@sandpool/client';
import { clientSandboxSource, type McpSandbox, type McpSandboxSource } from './mcp-sandbox.js';

/** Options of a {@link SandboxLease}: a `source` of sandboxes, or a `connection` to an API. */
export type SandboxLeaseOptions = SandboxLeaseCommonOptions &
  (
    | {
        /** Where the sandpool API is and how to authenticate (`url`, `apiKey`). */
        connection: ConnectionOptions;
        source?: undefined;
      }
    | {
        /** Where sandboxes come from (a worker's own services). */
        source: McpSandboxSource;
        connection?: undefined;
      }
  );

interface SandboxLeaseCommonOptions {
  /**
   * An existing session to use instead of creating one. It is not closed when the lease ends,
   * since it belongs to whoever created it.
   */
  sessionId?: string;
  /** Lifetime of a sandbox the lease creates, in seconds; default the server's. */
  ttlSeconds?: number;
  /** Template of a sandbox the lease creates; default `base`. */
  template?: string;
  /** Labels for a sandbox the lease creates. */
  metadata?: Record<string, string>;
}

type LeaseState = 'open' | 'released';

/**
 * The sandbox behind one MCP connection. It is created on first use (a client that only lists
 * tools costs no container), shared by concurrent tool calls, and closed when the connection
 * ends, unless the client named an existing session.
 */
export class SandboxLease {
  private state: LeaseState = 'open';
  private pending: Promise<McpSandbox> | undefined;
  private sandbox: McpSandbox | undefined;
  /** The named session until it is closed; afterwards new sandboxes are the lease's own. */
  private attachTo: string | undefined;

  private readonly source: McpSandboxSource;

  constructor(private readonly options: SandboxLeaseOptions) {
    this.attachTo = options.sessionId;
    this.source = options.source ?? clientSandboxSource(options.connection);
  }

  /** The sandbox if one is open now, without creating one. */
  get current(): McpSandbox | undefined {
    return this.sandbox !== undefined && !this.sandbox.closed ? this.sandbox : undefined;
  }

  /** Whether the current (or next) sandbox is one the client named rather than the lease's. */
  get attached(): boolean {
    return this.attachTo !== undefined;
  }

  /** The sandbox, created (or attached) on first use. */
  async get(): Promise<McpSandbox> {
    if (this.state === 'released') throw new Error('this MCP connection has ended');
    const open = this.current;
    if (open !== undefined) return open;
    this.pending ??= this.open().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /**
   * Ends the current sandbox now, whoever created it (the model asked for it explicitly). The
   * next tool call gets a fresh one.
   * @returns the id of the session that was closed, if there was one
   */
  async closeCurrent(): Promise<string | undefined> {
    const sandbox = this.current ?? (this.pending ? await this.pending : undefined);
    if (sandbox === undefined) return undefined;
    await sandbox.close();
    this.sandbox = undefined;
    this.attachTo = undefined;
    return sandbox.sessionId;
  }

  /** The connection ended: close the sandbox if the lease created it. Safe to call twice. */
  async release(): Promise<void> {
    if (this.state === 'released') return;
    this.state = 'released';
    const sandbox = this.sandbox ?? (await this.pending?.catch(() => undefined));
    if (sandbox !== undefined && !this.attached) await sandbox.close();
  }

  private async open(): Promise<McpSandbox> {
    const sandbox =
      this.attachTo !== undefined
        ? await this.source.connect(this.attachTo)
        : await this.source.create({
            template: this.options.template,
            ttlSeconds: this.options.ttlSeconds,
            metadata: { client: 'mcp', ...this.options.metadata },
          });
    if (this.state === 'released' && this.attachTo === undefined) {
      // The connection ended while the sandbox was being created: nobody will use it.
      await sandbox.close();
      throw new Error('this MCP connection has ended');
    }
    this.sandbox = sandbox;
    return sandbox;
  }
}

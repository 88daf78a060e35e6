import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { SandpoolError } from '../errors/sandpool-error.js';
import { systemClock, type Clock } from '../sessions/clock.js';
import type { McpSandboxSource } from './mcp-sandbox.js';
import { McpSessionExpiry } from './mcp-session-expiry.js';
import { SandboxLease } from './sandbox-lease.js';
import { createSandboxMcpServer, type SandboxMcpServerOptions } from './sandbox-mcp-server.js';

/** Options of {@link mcpRoutes}. */
export interface McpRouteOptions {
  /**
   * Where the tools' sandboxes come from. A worker passes its own services
   * (`ServiceSandboxSource`); without it, the tools call the API at `apiUrl` over HTTP (as
   * on a coordinator, so sessions spread over its workers).
   */
  sandboxes?: McpSandboxSource;
  /**
   * Base URL of the sandpool API the tools call through `@sandpool/client`. Default: this very
   * server, at the local address the MCP request came in on.
   */
  apiUrl?: string;
  /**
   * API key for those calls. Default: the bearer token of the MCP client's initialize request,
   * which the server's auth hook has already accepted.
   */
  apiKey?: string;
  /** An MCP session unused this long is closed, with its sandbox; default 5 minutes. */
  idleTimeoutMs?: number;
  /**
   * A session whose client dropped its event stream and did not reopen it in this time is
   * closed, with its sandbox; default 15 s (or the idle timeout, when shorter).
   */
  hangUpGraceMs?: number;
  /** Time as the expiry sees it (tests); default the system clock. */
  clock?: Clock;
  /** MCP sessions open at once; past it, 503 capacity_exhausted. Default 64. */
  maxSessions?: number;
  /** Options of each session's MCP server (output limits). */
  server?: SandboxMcpServerOptions;
}

/** Header with which a client attaches its MCP session to an existing sandpool session. */
export const SANDPOOL_SESSION_HEADER = 'x-sandpool-session';

const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_HANG_UP_GRACE_MS = 15_000;
const DEFAULT_MAX_SESSIONS = 64;
/** Bounds the wait for sandboxes to close when the server shuts down. */
const CLOSE_WAIT_MS = 3_000;

/** One MCP session: its transport, its server and the sandbox behind it. */
interface McpSession {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  lease: SandboxLease;
}

/** A JSON-RPC error answer, which MCP clients expect from this endpoint instead of ours. */
function rpcError(reply: FastifyReply, status: number, code: number, message: string) {
  return reply.code(status).send({ jsonrpc: '2.0', error: { code, message }, id: null });
}

/** The address this request reached the server on, as a URL the server can call itself at. */
function localUrl(request: FastifyRequest): string {
  const socket = request.raw.socket;
  let host = socket.localAddress ?? '127.0.0.1';
  if (host.startsWith('::ffff:') && host.includes('.')) host = host.slice('::ffff:'.length);
  if (host.includes(':')) host = `[${host}]`;
  return `http://${host}:${socket.localPort ?? 80}`;
}

function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer (.+)$/.exec(header ?? '')?.[1];
}

/**
 * MCP over streamable HTTP at `/mcp` (POST, GET for the event stream, DELETE to end): each MCP
 * session gets its own sandbox, created at its first tool call and closed when the session ends
 * (DELETE, its client hanging up, the idle timeout, shutdown). A client that sends
 * `X-Sandpool-Session: <id>` with its initialize request works in that existing session instead,
 * which is then left open.
 *
 * Register it behind the server's auth hook. On a worker its tools call the worker's services
 * in-process (`sandboxes`); elsewhere they call a sandpool API through the SDK.
 */
export const mcpRoutes: FastifyPluginAsync<McpRouteOptions> = async (app, options) => {
  const sessions = new Map<string, McpSession>();
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const hangUpGraceMs = Math.min(options.hangUpGraceMs ?? DEFAULT_HANG_UP_GRACE_MS, idleTimeoutMs);
  const maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
  const expiry = new McpSessionExpiry({
    idleTimeoutMs,
    hangUpGraceMs,
    clock: options.clock ?? systemClock,
  });

  /** Sandboxes being closed; shutdown waits for them, so no DELETE is cut off midway. */
  const releasing = new Set<Promise<void>>();

  const end = (id: string): Promise<void> => {
    const session = sessions.get(id);
    if (session === undefined) return Promise.resolve();
    sessions.delete(id);
    expiry.forget(id);
    const done = (async () => {
      await session.server.close().catch(() => undefined);
      await session.lease.release().catch((error: unknown) => {
        app.log.warn(
          { err: error, mcpSession: id },
          'could not close the sandbox of an MCP session',
        );
      });
    })();
    releasing.add(done);
    void done.finally(() => releasing.delete(done));
    return done;
  };

  const sweep = setInterval(
    () => {
      for (const id of expiry.due()) void end(id);
    },
    // Often enough that a lease ends within a fifth of its length (or grace) of its due time.
    Math.max(20, Math.min(hangUpGraceMs, idleTimeoutMs, 60_000) / 5),
  );
  sweep.unref();
  app.addHook('onClose', async () => {
    clearInterval(sweep);
    for (const id of [...sessions.keys()]) void end(id);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)));
    await Promise.race([Promise.allSettled([...releasing]), deadline]);
    clearTimeout(timer);
  });

  // JSON-RPC bodies, parsed here whatever parsers the host app uses (the coordinator streams).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: 4 * 1024 * 1024 },
    (_request, body, done) => done(null, body),
  );

  const open = async (request: FastifyRequest): Promise<StreamableHTTPServerTransport> => {
    if (sessions.size >= maxSessions) {
      throw new SandpoolError(
        'capacity_exhausted',
        `This server already holds ${maxSessions} MCP sessions; end one (DELETE /mcp) or retry later.`,
        30,
      );
    }
    const named = request.headers[SANDPOOL_SESSION_HEADER];
    const sessionId = typeof named === 'string' && named !== '' ? named : undefined;
    const lease =
      options.sandboxes !== undefined
        ? new SandboxLease({ source: options.sandboxes, sessionId })
        : new SandboxLease({
            connection: {
              url: options.apiUrl ?? localUrl(request),
              apiKey: options.apiKey ?? bearerToken(request.headers.authorization),
            },
            sessionId,
          });
    const server = createSandboxMcpServer(lease, options.server);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server, lease });
        expiry.track(id);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) void end(transport.sessionId);
    };
    await server.connect(transport);
    return transport;
  };

  app.route({
    method: ['GET', 'POST', 'DELETE'],
    url: '/mcp',
    schema: {
      tags: ['mcp'],
      summary:
        'MCP streamable HTTP: POST JSON-RPC, GET the event stream, DELETE to end the session',
      description:
        'Send `X-Sandpool-Session: <id>` with the initialize request to work in an existing session.',
    },
    // Host and Origin are checked for every route of the server (host-origin-guard.ts), /mcp
    // included, as the MCP specification asks of local servers.
    handler: async (request, reply) => {
      let body: unknown;
      if (typeof request.body === 'string' && request.body !== '') {
        try {
          body = JSON.parse(request.body) as unknown;
        } catch {
          return rpcError(reply, 400, -32700, 'Parse error: the body is not valid JSON');
        }
      }
      const id = request.headers['mcp-session-id'];
      let transport: StreamableHTTPServerTransport;
      if (typeof id === 'string') {
        const session = sessions.get(id);
        if (session === undefined) {
          return rpcError(reply, 404, -32001, 'MCP session not found; initialize a new one');
        }
        transport = session.transport;
      } else if (request.method === 'POST' && isInitializeRequest(body)) {
        transport = await open(request);
      } else {
        return rpcError(
          reply,
          400,
          -32000,
          'Bad request: send an initialize request first, then the Mcp-Session-Id it returns',
        );
      }
      // A GET is the client's event stream: when it breaks and stays broken, the client is gone.
      // Any other request is a call that holds the lease until it is answered.
      const sessionId = typeof id === 'string' ? id : undefined;
      if (sessionId !== undefined) {
        const over =
          request.method === 'GET' ? expiry.streamOpened(sessionId) : expiry.callStarted(sessionId);
        reply.raw.once('close', over);
      }
      // The transport writes the answer itself (JSON or an event stream).
      reply.hijack();
      await transport.handleRequest(request.raw, reply.raw, body);
      return reply;
    },
  });
};

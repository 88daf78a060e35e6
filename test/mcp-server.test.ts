import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Sandbox, SandpoolClient } from '@sandpool/client';
import Fastify from 'fastify';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ExecService } from '../packages/server/src/exec/exec-service.js';
import { FileService } from '../packages/server/src/files/file-service.js';
import { mcpRoutes } from '../packages/server/src/mcp/mcp-routes.js';
import { SandboxLease } from '../packages/server/src/mcp/sandbox-lease.js';
import { createSandboxMcpServer } from '../packages/server/src/mcp/sandbox-mcp-server.js';
import { ServiceSandboxSource } from '../packages/server/src/mcp/service-sandbox-source.js';
import { WorkerMetrics } from '../packages/server/src/metrics/worker-metrics.js';
import { containersOf } from './support/docker.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

/**
 * The MCP server as MCP clients use it, with the SDK's own client: `sandpool mcp` over stdio (the
 * built CLI in a child process) and streamable HTTP at /mcp on a real worker with an API key.
 */

const CLI = new URL('../packages/server/dist/cli/main.js', import.meta.url).pathname;
const API_KEY = 'mcp-test-key';
const TOOLS = [
  'list_directory',
  'process_output',
  'read_file',
  'run_code',
  'run_command',
  'sandbox_session',
  'start_process',
  'write_file',
];

function textOf(result: unknown): string {
  const { content } = result as CallToolResult;
  return content.map((part) => (part.type === 'text' ? part.text : `[${part.type}]`)).join('');
}

async function call(client: Client, name: string, args: Record<string, unknown>) {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  return { text: textOf(result), isError: result.isError === true };
}

/** Waits until the worker holds `count` sessions (closing happens after the client hangs up). */
async function waitForSessions(api: SandpoolClient, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const open = (await api.listSessions()).length;
    if (open === count) return;
    if (Date.now() > deadline) assert.fail(`expected ${count} sessions, found ${open}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('MCP server', () => {
  let w: TestWorker;
  let api: SandpoolClient;

  const httpClient = async (headers: Record<string, string> = {}) => {
    const client = new Client({ name: 'sandpool-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${w.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${API_KEY}`, ...headers } },
    });
    await client.connect(transport);
    return { client, transport };
  };

  before(async () => {
    assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
    w = await startWorker({ poolSize: 1, maxSessions: 4, apiKey: API_KEY });
    api = new SandpoolClient({ url: w.url, apiKey: API_KEY });
  });

  after(async () => {
    await w?.close();
    assert.deepEqual(await containersOf(w.workerId), [], 'containers left behind');
  });

  test('over stdio: lists the tools, runs python3 in a sandbox, closes it on disconnect', async () => {
    const client = new Client({ name: 'sandpool-test', version: '1.0.0' });
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined) env[name] = value;
    }
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [CLI, 'mcp'],
        env: { ...env, SANDPOOL_URL: w.url, SANDPOOL_API_KEY: API_KEY },
        stderr: 'ignore',
      }),
    );
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), TOOLS);
    for (const tool of tools) assert.ok((tool.description ?? '').length > 40, tool.name);
    assert.equal((await api.listSessions()).length, 0, 'no sandbox before the first tool call');

    const run = await call(client, 'run_command', { command: 'python3 -c "print(6*7)"' });
    assert.equal(run.isError, false);
    assert.match(run.text, /^exit_code: 0/);
    assert.match(run.text, /stdout:\n42\n/);
    assert.equal((await api.listSessions()).length, 1);

    await client.close();
    await waitForSessions(api, 0);
  });

  test('over HTTP: auth, origin check, files, truncation, session control, DELETE closes the sandbox', async () => {
    const refused = await fetch(`${w.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(refused.status, 401);
    const fromPage = await fetch(`${w.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${API_KEY}`,
        origin: 'http://evil.example',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(fromPage.status, 403, 'a web page may not drive the MCP server');
    const sameOrigin = await fetch(`${w.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${API_KEY}`,
        origin: w.url,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'same-origin', version: '1' },
        },
      }),
    });
    assert.equal(sameOrigin.status, 200, 'a page the server itself served may');
    const opened = sameOrigin.headers.get('mcp-session-id');
    assert.ok(opened);
    await sameOrigin.body?.cancel();
    await fetch(`${w.url}/mcp`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${API_KEY}`, 'mcp-session-id': opened },
    });

    const { client, transport } = await httpClient();
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), TOOLS);
    const runTool = tools.find((t) => t.name === 'run_command');
    assert.deepEqual(runTool?.inputSchema.required, ['command']);

    const run = await call(client, 'run_command', { command: 'python3 -c "print(6*7)"' });
    assert.match(run.text, /stdout:\n42\n/);

    const written = await call(client, 'write_file', {
      path: 'work/hello.py',
      content: 'print("hello from a file")\n',
    });
    assert.match(written.text, /wrote 27 bytes to \/home\/sandboxuser\/work\/hello\.py/);
    assert.match(
      (await call(client, 'run_command', { command: 'python3 work/hello.py' })).text,
      /hello from a file/,
    );
    assert.equal(
      (await call(client, 'read_file', { path: 'work/hello.py' })).text,
      'print("hello from a file")\n',
    );
    assert.match(
      (await call(client, 'list_directory', { path: 'work' })).text,
      /file\t27\t.*\thello\.py/,
    );

    const missing = await call(client, 'read_file', { path: 'nope.txt' });
    assert.equal(missing.isError, true);
    assert.match(missing.text, /^error: /);

    const long = await call(client, 'run_command', {
      command: 'python3 -c "print(\'x\' * 100000)"; exit 3',
    });
    assert.match(long.text, /^exit_code: 3/);
    assert.match(long.text, /characters of stdout omitted/);
    assert.ok(long.text.length < 25_000, `${long.text.length} characters`);

    const slow = await call(client, 'run_command', { command: 'sleep 5', timeout_seconds: 1 });
    assert.match(slow.text, /timeout of 1 s/);

    const info = await call(client, 'sandbox_session', { action: 'info' });
    const sessionId = /session_id: (\S+)/.exec(info.text)?.[1];
    assert.ok(sessionId);
    assert.deepEqual(
      (await api.listSessions()).map((s) => s.sessionId),
      [sessionId],
    );

    const fresh = await call(client, 'sandbox_session', { action: 'new' });
    assert.match(fresh.text, new RegExp(`closed ${sessionId}`));
    assert.match((await call(client, 'list_directory', {})).text, /is empty|entries/);
    assert.equal((await api.listSessions()).length, 1);

    await transport.terminateSession();
    await client.close();
    await waitForSessions(api, 0);
  });

  test('over HTTP with X-Sandpool-Session: works in that session and leaves it open', async () => {
    const sandbox = await Sandbox.create({ url: w.url, apiKey: API_KEY });
    try {
      const { client, transport } = await httpClient({ 'x-sandpool-session': sandbox.sessionId });
      await call(client, 'write_file', { path: 'from-mcp.txt', content: 'shared' });
      await transport.terminateSession();
      await client.close();
      assert.equal(await sandbox.readTextFile('from-mcp.txt'), 'shared');
      assert.equal((await api.listSessions()).length, 1);
    } finally {
      await sandbox.close();
    }
  });

  test('mcpRoutes on another server (as on a coordinator): idle sessions end with their sandbox', async () => {
    const app = Fastify();
    // As the coordinator does: bodies stay unread streams at the root.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    await app.register(mcpRoutes, { apiUrl: w.url, apiKey: API_KEY, idleTimeoutMs: 300 });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const client = new Client({ name: 'sandpool-test', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
      const run = await call(client, 'run_command', { command: 'echo via another server' });
      assert.match(run.text, /via another server/);
      assert.equal((await api.listSessions()).length, 1);
      await waitForSessions(api, 0);
      await assert.rejects(client.listTools(), /not found|404/i);
      await client.close();
    } finally {
      await app.close();
    }
  });

  test('over HTTP: a client that hangs up without DELETE loses its sandbox after the grace, not the idle lease', async () => {
    const app = Fastify();
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    await app.register(mcpRoutes, {
      apiUrl: w.url,
      apiKey: API_KEY,
      idleTimeoutMs: 10 * 60_000,
      hangUpGraceMs: 500,
    });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const client = new Client({ name: 'sandpool-test', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
      await call(client, 'run_command', { command: 'true' });
      assert.equal((await api.listSessions()).length, 1);
      // Not terminateSession(): the client just goes away, as a killed process does.
      await client.close();
      const started = Date.now();
      await waitForSessions(api, 0);
      assert.ok(Date.now() - started < 8_000, `${Date.now() - started} ms`);
    } finally {
      await app.close();
    }
  });

  test('the tools over the worker’s services in-process (no HTTP): same sessions, same error codes', async () => {
    const { sessions } = w.worker;
    const source = new ServiceSandboxSource({
      sessions,
      exec: new ExecService({
        sessions,
        defaultTimeoutMs: 10_000,
        maxTimeoutMs: 60_000,
        outputLimitBytes: 1024 * 1024,
        metrics: new WorkerMetrics({
          poolIdle: () => 0,
          poolTarget: () => 0,
          poolWaiting: () => 0,
          activeSessions: () => 0,
        }),
      }),
      files: new FileService(sessions),
    });
    const lease = new SandboxLease({ source });
    const server = createSandboxMcpServer(lease);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = new Client({ name: 'sandpool-test', version: '1.0.0' });
    await client.connect(clientSide);
    try {
      const run = await call(client, 'run_command', {
        command: 'cat; echo err >&2; exit 2',
        stdin: 'fed\n',
      });
      assert.match(run.text, /^exit_code: 2/);
      assert.match(run.text, /stdout:\nfed\n/);
      assert.match(run.text, /stderr:\nerr\n/);
      await call(client, 'write_file', { path: 'd/x.bin', content: 'AAEC', encoding: 'base64' });
      assert.equal(
        (await call(client, 'read_file', { path: 'd/x.bin', encoding: 'base64' })).text,
        'AAEC',
      );
      assert.match(
        (await call(client, 'list_directory', { path: 'd' })).text,
        /file\t3\t.*\tx\.bin/,
      );
      const outside = await call(client, 'read_file', { path: '/etc/../../x\u0000' });
      assert.equal(outside.isError, true, outside.text);
      const missing = await call(client, 'read_file', { path: 'nope.txt' });
      assert.equal(missing.isError, true);
      assert.match(missing.text, /^error: /);
      const info = await call(client, 'sandbox_session', { action: 'info' });
      const sessionId = /session_id: (\S+)/.exec(info.text)?.[1];
      assert.deepEqual(
        (await api.listSessions()).map((s) => s.sessionId),
        [sessionId],
        'the session is the worker’s own, seen through its HTTP API',
      );
      await sessions.delete(sessionId ?? '');
      const gone = await call(client, 'run_command', { command: 'true' });
      assert.equal(gone.isError, true);
      assert.match(gone.text, /sandbox is gone/);
    } finally {
      await client.close();
      await lease.release();
    }
    await waitForSessions(api, 0);
  });
});

import type { Command } from 'commander';
import { parsePositiveInt } from './client/cli-args.js';
import { withConnectionOptions } from './client/cli-context.js';

/** Flags of `sandpool mcp`. */
interface McpFlags {
  url?: string;
  apiKey?: string;
  session?: string;
  ttlSeconds?: number;
  template?: string;
}

/**
 * `sandpool mcp`: an MCP server over stdio for desktop and IDE agents. Its tools run in one
 * sandbox, created at the first tool call and closed when the client disconnects (unless
 * `--session` names an existing one, which is left open).
 */
export function registerMcpCommand(program: Command): void {
  withConnectionOptions(program.command('mcp'))
    .description(
      'Serve MCP over stdio: tools that run commands and move files in a sandbox (for Claude ' +
        'Desktop, IDEs and other MCP clients)',
    )
    .option('--session <id>', 'use this existing session (left open on exit) instead of a new one')
    .option('--template <name>', 'template of the sandbox it creates (default base)')
    .option(
      '--ttl-seconds <n>',
      'lifetime of the sandbox it creates, in seconds (default the server’s)',
      parsePositiveInt,
    )
    .addHelpText(
      'after',
      '\nstdout carries the protocol; diagnostics go to stderr.\n\nExample MCP client entry:\n' +
        '  {"command": "npx", "args": ["sandpool", "mcp"], "env": {"SANDPOOL_URL": "http://127.0.0.1:5000"}}\n',
    )
    .action(async (flags: McpFlags) => {
      // Loaded here so the other commands start without the MCP SDK.
      const { StdioServerTransport } = await import('@modelcontextprotocol/sdk/server/stdio.js');
      const { SandboxLease } = await import('../mcp/sandbox-lease.js');
      const { createSandboxMcpServer } = await import('../mcp/sandbox-mcp-server.js');

      const lease = new SandboxLease({
        connection: { url: flags.url, apiKey: flags.apiKey },
        sessionId: flags.session,
        ttlSeconds: flags.ttlSeconds,
        template: flags.template,
      });
      const server = createSandboxMcpServer(lease);

      let stopping: Promise<void> | undefined;
      const stop = (why: string) => {
        stopping ??= (async () => {
          process.stderr.write(`sandpool mcp: ${why}; closing the sandbox\n`);
          await server.close().catch(() => undefined);
          try {
            await lease.release();
          } catch (error) {
            process.stderr.write(`sandpool mcp: could not close the sandbox: ${String(error)}\n`);
            process.exitCode = 1;
          }
          process.exit();
        })();
      };
      // The client ending the connection is how an stdio MCP session ends.
      process.stdin.once('end', () => stop('the client disconnected'));
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));

      await server.connect(new StdioServerTransport());
      process.stderr.write('sandpool mcp: serving MCP on stdio\n');
    });
}

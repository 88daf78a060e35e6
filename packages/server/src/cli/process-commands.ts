import {
  Sandbox,
  SandpoolClient,
  type ProcessInfo,
  type ProcessSignalName,
} from '@sandpool/client';
import type { Command } from 'commander';
import {
  connectionOptions,
  printDiagnostic,
  printJson,
  printResult,
  runAction,
  withClientOptions,
  withConnectionOptions,
  type ClientFlags,
} from './client/cli-context.js';

/** Exit code of `sandpool shell` when sandpool itself failed (as `docker run` does). */
const EXIT_SANDPOOL_FAILED = 125;
/** Lifetime of a session `shell` opens for itself, in seconds (reaped soon if the CLI dies). */
const OWN_SESSION_TTL_SECONDS = 3600;

interface SessionFlags extends ClientFlags {
  session: string;
}

/**
 * Registers `sandpool ps`, `logs`, `kill` and `shell`: background processes and an interactive
 * terminal in a sandbox, over the public API (the terminal over its WebSocket).
 */
export function registerProcessCommands(program: Command): void {
  withClientOptions(
    program
      .command('ps')
      .description('List the running and recently exited background processes of a session')
      .requiredOption('-s, --session <id>', 'the session'),
  ).action((flags: SessionFlags) =>
    runAction('ps', flags, async () => {
      const sandbox = await Sandbox.connect(flags.session, connectionOptions(flags));
      const processes = await sandbox.processes.list();
      if (flags.json === true) printJson({ processes: processes.map(processJson) });
      else printResult(formatTable(processes));
      return 0;
    }),
  );

  withClientOptions(
    program
      .command('logs')
      .description(
        'Print what a background process wrote (the kept tail); with --follow, keep printing until it exits',
      )
      .argument('<pid>', 'process id or tag')
      .requiredOption('-s, --session <id>', 'the session')
      .option('-f, --follow', 'follow the live output until the process exits'),
  ).action((pid: string, flags: SessionFlags & { follow?: boolean }) =>
    runAction('logs', flags, async () => {
      const sandbox = await Sandbox.connect(flags.session, connectionOptions(flags));
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      try {
        for await (const event of sandbox.processes.output(pid, {
          follow: flags.follow === true,
          signal: controller.signal,
        })) {
          if (event.type === 'stdout') process.stdout.write(event.data);
          else if (event.type === 'stderr') process.stderr.write(event.data);
          else if (event.type === 'truncated') {
            printDiagnostic(`[${event.droppedBytes} earlier bytes were dropped]`);
          } else if (event.type === 'exit' && flags.follow === true) {
            printDiagnostic(`[exited with code ${event.exitCode}]`);
            return event.exitCode;
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return 130;
        throw error;
      } finally {
        process.off('SIGINT', stop);
      }
      return 0;
    }),
  );

  withClientOptions(
    program
      .command('kill')
      .description('Kill a background process and its group (or send it --signal)')
      .argument('<pid>', 'process id or tag')
      .requiredOption('-s, --session <id>', 'the session')
      .option('--signal <name>', 'send this signal instead (SIGTERM, SIGINT, SIGHUP, ...)'),
  ).action((pid: string, flags: SessionFlags & { signal?: string }) =>
    runAction('kill', flags, async () => {
      const sandbox = await Sandbox.connect(flags.session, connectionOptions(flags));
      if (flags.signal !== undefined) {
        const name = flags.signal.toUpperCase();
        await sandbox.processes.signal(
          pid,
          (name.startsWith('SIG') ? name : `SIG${name}`) as ProcessSignalName,
        );
        if (flags.json === true) printJson({ pid, signal: name });
        return 0;
      }
      const ended = await sandbox.processes.kill(pid);
      if (flags.json === true) printJson(processJson(ended));
      else printResult(`${ended.pid} killed (exit code ${ended.exitCode ?? 'unknown'})`);
      return 0;
    }),
  );

  withConnectionOptions(
    program
      .command('shell')
      .description(
        'Open an interactive shell in a sandbox, like `docker exec -it`; exits with the shell’s code',
      )
      .option('-s, --session <id>', 'use this session (default: a new one, closed afterwards)')
      .option('--template <name>', 'template of the new session')
      .option('-c, --command <command>', 'run this instead of bash'),
  ).action((flags: ClientFlags & { session?: string; template?: string; command?: string }) =>
    runAction('shell', flags, () => runShell(flags), EXIT_SANDPOOL_FAILED),
  );
}

async function runShell(
  flags: ClientFlags & { session?: string; template?: string; command?: string },
): Promise<number> {
  const options = connectionOptions(flags);
  const own = flags.session === undefined;
  const sandbox = own
    ? await createSession(options, flags.template)
    : await Sandbox.connect(flags.session ?? '', options);
  try {
    const size = terminalSize();
    const started = await sandbox.processes.start(flags.command ?? ['/bin/bash', '-l'], {
      pty: size,
    });
    return await attachTerminal(
      sandbox,
      started.pid,
      options.apiKey ?? process.env.SANDPOOL_API_KEY,
    );
  } finally {
    if (own) await sandbox.close().catch(() => undefined);
  }
}

/** A new session; `--template` is passed through to servers that know templates. */
async function createSession(
  options: ReturnType<typeof connectionOptions>,
  template: string | undefined,
): Promise<Sandbox> {
  if (template === undefined) {
    return Sandbox.create({ ...options, ttlSeconds: OWN_SESSION_TTL_SECONDS });
  }
  // The SDK's create has no template option yet (issue 11 adds it); the API call is the same.
  const url = new SandpoolClient(options).url;
  const apiKey = options.apiKey ?? process.env.SANDPOOL_API_KEY;
  const response = await fetch(`${url}/v1/sessions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }),
    },
    body: JSON.stringify({ template, ttl_seconds: OWN_SESSION_TTL_SECONDS }),
  });
  const body = (await response.json().catch(() => ({}))) as {
    session_id?: string;
    error?: { message?: string };
  };
  if (response.status !== 201 || body.session_id === undefined) {
    throw new Error(body.error?.message ?? `creating a session answered ${response.status}`);
  }
  return Sandbox.connect(body.session_id, options);
}

function terminalSize(): { cols: number; rows: number } {
  return {
    cols: process.stdout.isTTY ? process.stdout.columns : 80,
    rows: process.stdout.isTTY ? process.stdout.rows : 24,
  };
}

/**
 * Bridges this terminal to the process's PTY WebSocket: raw mode, keys out, bytes in, resize on
 * SIGWINCH; the terminal is restored however it ends. Resolves with the remote exit code.
 */
async function attachTerminal(
  sandbox: Sandbox,
  pid: number,
  apiKey: string | undefined,
): Promise<number> {
  // Loaded here so the other client commands start without it.
  const { WebSocket } = await import('ws');
  const url = `${sandbox.url.replace(/^http/, 'ws')}/v1/sessions/${sandbox.sessionId}/processes/${pid}/pty`;
  const socket = new WebSocket(url, {
    headers: apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` },
  });
  const stdin = process.stdin;
  const raw = stdin.isTTY;
  const restore = () => {
    if (raw && stdin.isRaw) stdin.setRawMode(false);
  };
  // However the process leaves, the terminal is given back as it was.
  process.once('exit', restore);
  return new Promise<number>((resolve, reject) => {
    let exitCode: number | undefined;
    let failure: Error | undefined;
    const onKeys = (data: Buffer) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(data, { binary: true });
    };
    const onResize = () => {
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: 'resize', ...terminalSize() }));
      }
    };
    const onSignal = () => socket.close(1000, 'client ended');
    const cleanup = () => {
      stdin.off('data', onKeys);
      stdin.pause();
      process.stdout.off('resize', onResize);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
      restore();
      process.off('exit', restore);
    };
    socket.once('open', () => {
      if (raw) stdin.setRawMode(true);
      stdin.on('data', onKeys);
      stdin.resume();
      process.stdout.on('resize', onResize);
      process.once('SIGTERM', onSignal);
      process.once('SIGHUP', onSignal);
    });
    socket.on('message', (data: Buffer, binary: boolean) => {
      if (binary) {
        process.stdout.write(data);
        return;
      }
      const event = JSON.parse(data.toString('utf8')) as {
        type?: string;
        exit_code?: number;
        error?: { message?: string };
      };
      if (event.type === 'exit') exitCode = event.exit_code;
      else if (event.type === 'error')
        failure = new Error(event.error?.message ?? 'terminal error');
      else if (event.type === 'truncated') printDiagnostic('\r\n[earlier output was dropped]\r');
    });
    socket.once('unexpected-response', (_request, response) => {
      failure = new Error(`the terminal could not open (HTTP ${response.statusCode ?? '?'})`);
      socket.terminate();
    });
    socket.once('error', (error) => (failure ??= error));
    socket.once('close', () => {
      cleanup();
      if (exitCode !== undefined) resolve(exitCode);
      else reject(failure ?? new Error('the terminal closed before the shell exited'));
    });
  });
}

function processJson(p: ProcessInfo): Record<string, unknown> {
  return {
    pid: p.pid,
    tag: p.tag,
    command: p.command,
    running: p.running,
    exit_code: p.exitCode,
    timed_out: p.timedOut,
    pty: p.pty,
    started_at: p.startedAt,
    ended_at: p.endedAt,
  };
}

function formatTable(processes: ProcessInfo[]): string {
  if (processes.length === 0) return 'no processes';
  const rows = processes.map((p) => [
    String(p.pid),
    p.tag ?? '-',
    p.running ? 'running' : `exited ${p.exitCode ?? '?'}`,
    p.startedAt,
    p.command,
  ]);
  const header = ['PID', 'TAG', 'STATUS', 'STARTED', 'COMMAND'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows]
    .map((r) =>
      r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}

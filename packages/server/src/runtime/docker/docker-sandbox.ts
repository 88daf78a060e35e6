import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { Readable, type Writable } from 'node:stream';
import type Docker from 'dockerode';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type {
  ExecOutcome,
  ExecRequest,
  ExecSinks,
  FileEntry,
  FileStat,
  FileType,
  Sandbox,
  SandboxLabels,
} from '../sandbox-runtime.js';
import { demuxDockerStream } from './docker-stream-demuxer.js';
import { translateDockerError } from './docker-errors.js';
import { isContainerRunning, removeContainer } from './docker-container.js';
import { errnoFromText, fileErrorFor } from '../agent/agent-errors.js';
import { DEFAULT_AGENT_LIMITS } from '../agent/agent-connection.js';
import { tooManyEntries } from '../agent/agent-files.js';
import { SANDBOX_HOME } from '../sandbox-layout.js';

const SANDBOX_USER = '1000:1000';
/** Where each exec leaves its process-group id, so a timeout can kill the whole group. */
const PGID_DIR = '/tmp/.sandpool';
/** Small control commands (stat, mv, kill) never produce much; this bounds what we keep of them. */
const CONTROL_OUTPUT_LIMIT = 64 * 1024;

/**
 * The engine starts every exec as the leader of its own session and process group, so the
 * wrapper's pid is the group id: it records it for a timeout to kill the whole group, and removes
 * the record when the command ends. `$0` is the record's path, `$@` the argv.
 */
const GROUP_WRAPPER =
  '[ -d "${0%/*}" ] || mkdir -p "${0%/*}"; echo $$ > "$0"; "$@"; rc=$?; rm -f "$0"; exit $rc';

interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: Readable;
  onStdout?: (chunk: Buffer) => void | Promise<void>;
  onStderr?: (chunk: Buffer) => void | Promise<void>;
}

interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** One container seen through the Docker Engine API; every operation runs as the sandbox user. */
export class DockerSandbox implements Sandbox {
  private destroyed = false;

  constructor(
    private readonly container: Docker.Container,
    readonly id: string,
    readonly labels: SandboxLabels,
  ) {}

  async exec(request: ExecRequest, sinks: ExecSinks): Promise<ExecOutcome> {
    const started = performance.now();
    const marker = randomBytes(9).toString('hex');
    const pgidFile = `${PGID_DIR}/${marker}`;
    let timedOut = false;
    let killing: Promise<void> | undefined;
    const killGroup = () => {
      killing ??= this.killGroup(pgidFile, marker);
      return killing;
    };
    const timer = setTimeout(() => {
      timedOut = true;
      void killGroup();
    }, request.timeoutMs);
    const onAbort = () => void killGroup();
    request.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await this.run(['/bin/sh', '-c', GROUP_WRAPPER, pgidFile, ...request.argv], {
        cwd: request.cwd,
        // Inherited by descendants that leave the process group (setsid), so a timeout finds them.
        env: { ...request.env, SANDPOOL_EXEC: marker },
        stdin: request.stdin ? Readable.from([Buffer.from(request.stdin)]) : undefined,
        onStdout: (chunk) => sinks.onStdout(chunk),
        onStderr: (chunk) => sinks.onStderr(chunk),
      });
      await killing;
      return {
        exitCode: result.exitCode,
        timedOut,
        durationMs: Math.round(performance.now() - started),
      };
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async killGroup(pgidFile: string, marker: string): Promise<void> {
    // The record appears a moment after the exec starts; retry briefly so a very short timeout
    // still kills. Then the processes that left the group, found by the marker in their environment.
    const script =
      'for i in 1 2 3 4 5 6 7 8 9 10; do if [ -s "$1" ]; then kill -KILL "-$(cat "$1")" 2>/dev/null; rm -f "$1"; break; fi; sleep 0.1; done; ' +
      'for p in /proc/[0-9]*; do grep -qzx "SANDPOOL_EXEC=$2" "$p/environ" 2>/dev/null && kill -KILL "${p#/proc/}" 2>/dev/null; done; exit 0';
    try {
      await this.run(['/bin/sh', '-c', script, 'sh', pgidFile, marker]);
    } catch {
      // The container may be gone already; the exec then ends on its own.
    }
  }

  async writeFile(path: string, content: Readable): Promise<number> {
    const partial = `${path}.sandpool-partial-${randomBytes(6).toString('hex')}`;
    let bytes = 0;
    async function* counted(source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        bytes += chunk.length;
        yield chunk;
      }
    }
    let written: RunResult;
    try {
      written = await this.run(
        ['/bin/sh', '-c', 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"', 'sh', partial],
        { stdin: Readable.from(counted(content)) },
      );
    } catch (error) {
      await this.run(['rm', '-f', '--', partial]).catch(() => undefined);
      throw error;
    }
    if (written.exitCode !== 0) {
      await this.run(['rm', '-f', '--', partial]).catch(() => undefined);
      throw fileOperationError(written.stderr, path);
    }
    // Renamed only once every byte arrived, so a failed upload never leaves a half-written file.
    const moved = await this.run(['mv', '-f', '--', partial, path]);
    if (moved.exitCode !== 0) {
      await this.run(['rm', '-f', '--', partial]).catch(() => undefined);
      throw fileOperationError(moved.stderr, path);
    }
    return bytes;
  }

  async statFile(path: string): Promise<FileStat | undefined> {
    const result = await this.run(['stat', '-L', '-c', '%F|%s', '--', path]);
    if (result.exitCode !== 0) {
      if (/No such file|Not a directory/i.test(result.stderr)) return undefined;
      throw fileOperationError(result.stderr, path);
    }
    const [kind = '', size = '0'] = result.stdout.trim().split('|');
    return { type: fileTypeFromStat(kind), size: Number(size) };
  }

  async readFile(path: string, destination: Writable): Promise<void> {
    const result = await this.run(['cat', '--', path], {
      onStdout: async (chunk) => {
        // A reader that went away ends the exec (its stream is closed, `cat` stops).
        if (destination.destroyed) throw new Error(`the download of ${path} was abandoned`);
        if (!destination.write(chunk))
          await Promise.race([once(destination, 'drain'), once(destination, 'close')]);
      },
    });
    if (result.exitCode !== 0) throw fileOperationError(result.stderr, path);
  }

  async listFiles(path: string): Promise<FileEntry[]> {
    const script =
      '[ -d "$1" ] || { [ -e "$1" ] && exit 3; exit 2; }; ' +
      'find "$1" -mindepth 1 -maxdepth 1 -printf \'%f\\0%y\\0%s\\0%m\\0%T@\\0\' | head -z -n "$2"';
    // One entry past the limit is enough to know the listing is too large.
    const limit = DEFAULT_AGENT_LIMITS.maxListEntries;
    const fields = String(5 * (limit + 1));
    const result = await this.run(
      ['/bin/sh', '-c', script, 'sh', path, fields],
      {},
      16 * 1024 * 1024,
    );
    if (result.exitCode === 2) throw fileNotFound(path);
    if (result.exitCode === 3) {
      throw new SandpoolError(
        'invalid_path',
        `${path} is a file, not a directory; read it with GET /files?path=...`,
      );
    }
    if (result.exitCode !== 0) throw fileOperationError(result.stderr, path);
    const entries = parseFindOutput(result.stdout);
    if (entries.length > limit) throw tooManyEntries(path, limit);
    return entries;
  }

  async removeFile(path: string): Promise<void> {
    const script = '[ -e "$1" ] || [ -L "$1" ] || exit 2; exec rm -rf -- "$1"';
    const result = await this.run(['/bin/sh', '-c', script, 'sh', path]);
    if (result.exitCode === 2) throw fileNotFound(path);
    if (result.exitCode !== 0) throw fileOperationError(result.stderr, path);
  }

  isAlive(): Promise<boolean> {
    return isContainerRunning(this.container);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await removeContainer(this.container);
  }

  /**
   * One process through the Engine API's exec, as the sandbox user. Output goes to the handlers
   * when given, else up to `keepBytes` of it is returned.
   */
  private async run(
    argv: string[],
    options: RunOptions = {},
    keepBytes = CONTROL_OUTPUT_LIMIT,
  ): Promise<RunResult> {
    let exec: Docker.Exec;
    let stream: NodeJS.ReadWriteStream;
    try {
      exec = await this.container.exec({
        Cmd: argv,
        User: SANDBOX_USER,
        WorkingDir: options.cwd ?? SANDBOX_HOME,
        Env: options.env ? Object.entries(options.env).map(([k, v]) => `${k}=${v}`) : undefined,
        AttachStdin: options.stdin !== undefined,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      stream = (await exec.start({
        hijack: true,
        stdin: options.stdin !== undefined,
      })) as NodeJS.ReadWriteStream;
    } catch (error) {
      throw translateDockerError(error, `running ${argv[0] ?? 'a command'} in a sandbox`);
    }
    const duplex = stream as unknown as Readable & Writable;
    const stdout = new BoundedText(keepBytes);
    const stderr = new BoundedText(keepBytes);
    let fed = false;
    const feeding = options.stdin
      ? pipeline(options.stdin, duplex, { end: true })
          .catch((error: unknown) => {
            // The process may exit before reading all its input; only a failing source matters.
            duplex.destroy();
            throw error;
          })
          .finally(() => {
            fed = true;
          })
      : Promise.resolve();
    const reading = demuxDockerStream(duplex, (kind, payload) => {
      const handler = kind === 'stdout' ? options.onStdout : options.onStderr;
      if (handler) return handler(payload);
      (kind === 'stdout' ? stdout : stderr).append(payload);
      return undefined;
    })
      .catch((error: unknown) => {
        duplex.destroy(); // a handler gave up: close the exec's stdio so its process ends
        throw error;
      })
      .finally(() => {
        // The process is gone (for example a full disk ended `cat`): stop feeding it.
        if (!fed) options.stdin?.destroy();
      });
    const [feedResult] = await Promise.allSettled([feeding, reading]);
    if (feedResult.status === 'rejected' && options.stdin?.errored) throw feedResult.reason;
    let exitCode: number;
    try {
      exitCode = (await exec.inspect()).ExitCode ?? -1;
    } catch (error) {
      throw translateDockerError(error, 'reading an exit code');
    }
    return { exitCode, stdout: stdout.text(), stderr: stderr.text() };
  }
}

/** Keeps the first `limit` bytes of a stream and drops the rest. */
class BoundedText {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  constructor(private readonly limit: number) {}
  append(chunk: Buffer): void {
    if (this.kept >= this.limit) return;
    const part = chunk.subarray(0, this.limit - this.kept);
    this.chunks.push(part);
    this.kept += part.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function fileTypeFromStat(kind: string): FileType {
  if (kind.startsWith('regular')) return 'file';
  if (kind === 'directory') return 'directory';
  if (kind === 'symbolic link') return 'symlink';
  return 'other';
}

const FIND_TYPES: Record<string, FileType> = { f: 'file', d: 'directory', l: 'symlink' };

/** Parses `find -printf '%f\0%y\0%s\0%m\0%T@\0'` output. */
export function parseFindOutput(output: string): FileEntry[] {
  const fields = output.split('\0');
  const entries: FileEntry[] = [];
  for (let i = 0; i + 4 < fields.length; i += 5) {
    const [name = '', type = '', size = '0', mode = '0', mtime = '0'] = fields.slice(i, i + 5);
    entries.push({
      name,
      type: FIND_TYPES[type] ?? 'other',
      size: Number(size),
      mode,
      mtime: new Date(Number(mtime) * 1000).toISOString(),
    });
  }
  return entries.sort((a, b) => a.name.localeCompare(b.name));
}

function fileNotFound(path: string): SandpoolError {
  return fileErrorFor('ENOENT', path, '');
}

/** The tool's last line of stderr names the errno; the shared mapping makes it public. */
function fileOperationError(stderr: string, path: string): SandpoolError {
  const detail = stderr.trim().split('\n').pop() ?? '';
  return fileErrorFor(errnoFromText(detail), path, detail);
}

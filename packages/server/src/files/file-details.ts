import { z } from 'zod';
import { SandpoolError } from '../errors/sandpool-error.js';
import { fileErrorFor } from '../runtime/agent/agent-errors.js';
import type { Sandbox } from '../runtime/sandbox-runtime.js';
import { SANDBOX_HOME } from './sandbox-path.js';

/** What a stat, a listing with depth, a make-dir or a move tells about one entry. */
export interface FileDetails {
  name: string;
  /** Absolute path inside the sandbox. */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  /** Permission bits (with setuid, setgid, sticky), e.g. 0o644. */
  mode: number;
  /** As `ls -l` shows them, e.g. "drwxr-xr-x". */
  permissions: string;
  owner: string;
  group: string;
  mtimeMs: number;
  symlinkTarget?: string;
}

/** Entries a listing with depth may return before it is refused. */
export const MAX_TREE_ENTRIES = 10_000;

// The agent's file protocol has no stat details, make-dir or move, and only the "ports" helper
// changes the agent this round: these run as one python3 process (every image has python3 for
// the agent), as the sandbox user, with the paths as argv (never through a shell).
const TOOL = String.raw`
import errno, grp, json, os, pwd, shutil, stat, sys
def perms(m):
    t = 'd' if stat.S_ISDIR(m) else 'l' if stat.S_ISLNK(m) else '-' if stat.S_ISREG(m) else '?'
    return t + stat.filemode(m)[1:]
def name_of(table, key):
    try: return table(key)[0]
    except KeyError: return str(key)
def entry(p):
    st = os.lstat(p)
    m = st.st_mode
    kind = 'directory' if stat.S_ISDIR(m) else 'symlink' if stat.S_ISLNK(m) else 'file' if stat.S_ISREG(m) else 'other'
    e = {'name': os.path.basename(p) or p, 'path': p, 'type': kind, 'size': st.st_size,
         'mode': stat.S_IMODE(m), 'permissions': perms(m), 'owner': name_of(pwd.getpwuid, st.st_uid),
         'group': name_of(grp.getgrgid, st.st_gid), 'mtimeMs': st.st_mtime_ns // 1000000}
    if kind == 'symlink': e['symlinkTarget'] = os.readlink(p)
    return e
def fail(code, message):
    print(json.dumps({'error': code, 'message': message})); sys.exit(3)
op, args = sys.argv[1], sys.argv[2:]
try:
    if op == 'stat':
        print(json.dumps(entry(args[0])))
    elif op == 'tree':
        root, depth, limit = args[0], int(args[1]), int(args[2])
        if not os.path.lexists(root): fail('ENOENT', 'no such file or directory')
        if not os.path.isdir(root) or os.path.islink(root): fail('not_dir', root + ' is not a directory')
        count, level = 0, [root]
        for _ in range(depth):
            nxt = []
            for d in level:
                try: names = sorted(os.listdir(d))
                except OSError: continue
                for n in names:
                    p = os.path.join(d, n)
                    try: e = entry(p)
                    except OSError: continue
                    count += 1
                    if count > limit: fail('too_many', 'more than %d entries' % limit)
                    print(json.dumps(e))
                    if e['type'] == 'directory': nxt.append(p)
            level = nxt
    elif op == 'mkdir':
        p = args[0]
        if os.path.lexists(p):
            if os.path.isdir(p): print(json.dumps(dict(entry(p), created=False))); sys.exit(0)
            fail('not_dir', p + ' exists and is not a directory')
        os.makedirs(p)
        print(json.dumps(dict(entry(p), created=True)))
    elif op == 'move':
        src, dst = args
        if not os.path.lexists(src): fail('ENOENT', 'no such file or directory')
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.move(src, dst)
        print(json.dumps(entry(dst)))
except OSError as e:
    fail(errno.errorcode.get(e.errno, 'EIO'), e.strerror or str(e))
`;

const detailsSchema = z.object({
  name: z.string().max(4096),
  path: z.string().max(8192),
  type: z.enum(['file', 'directory', 'symlink', 'other']),
  size: z.number().int().nonnegative(),
  mode: z.number().int().min(0).max(0o7777),
  permissions: z.string().max(16),
  owner: z.string().max(256),
  group: z.string().max(256),
  mtimeMs: z.number().int(),
  symlinkTarget: z.string().max(8192).optional(),
});
const failureSchema = z.object({
  error: z.string().regex(/^[A-Za-z_]{1,32}$/),
  message: z.string().max(10_000),
});

/** What one listing line may weigh at most (paths are bounded at 4 KiB each). */
const MAX_LINE_BYTES = 16 * 1024;
const TOOL_TIMEOUT_MS = 30_000;

/**
 * Stat details, listings with depth, make-dir and move inside one sandbox. Everything the
 * sandbox prints is bounded and checked: a hostile sandbox can only fail its own request.
 */
export class FileDetailsReader {
  constructor(private readonly sandbox: Sandbox) {}

  /** `undefined` when nothing is at `path` (a dangling symlink is an entry). */
  async stat(path: string): Promise<FileDetails | undefined> {
    try {
      return parseDetails((await this.run(['stat', path], 1))[0]);
    } catch (error) {
      if (error instanceof SandpoolError && error.code === 'file_not_found') return undefined;
      throw error;
    }
  }

  /** Entries under `path` down to `depth` levels (1: its children), parents before children. */
  async tree(path: string, depth: number): Promise<FileDetails[]> {
    const lines = await this.run(
      ['tree', path, String(depth), String(MAX_TREE_ENTRIES)],
      MAX_TREE_ENTRIES,
    );
    return lines.map(parseDetails);
  }

  /** Makes `path` and its parents; `created` is false when the directory was already there. */
  async makeDir(path: string): Promise<{ created: boolean; entry: FileDetails }> {
    const [line] = await this.run(['mkdir', path], 1);
    const entry = parseDetails(line);
    const flag = z.object({ created: z.boolean() }).safeParse(safeJson(line));
    if (!flag.success) {
      throw new SandpoolError('internal_error', 'The sandbox answered a make-dir malformed.');
    }
    return { created: flag.data.created, entry };
  }

  /** Moves `source` to `destination` (parents made), and describes what is there now. */
  async move(source: string, destination: string): Promise<FileDetails> {
    return parseDetails((await this.run(['move', source, destination], 1))[0]);
  }

  private async run(args: string[], maxLines: number): Promise<string[]> {
    const limit = maxLines * MAX_LINE_BYTES;
    const chunks: Buffer[] = [];
    let bytes = 0;
    let overflow = false;
    const outcome = await this.sandbox.exec(
      { argv: ['python3', '-c', TOOL, ...args], cwd: SANDBOX_HOME, timeoutMs: TOOL_TIMEOUT_MS },
      {
        onStdout: (chunk) => {
          bytes += chunk.length;
          if (bytes > limit) overflow = true;
          else chunks.push(chunk);
        },
        onStderr: () => undefined,
      },
    );
    if (overflow || outcome.timedOut) {
      throw new SandpoolError(
        'payload_too_large',
        outcome.timedOut
          ? `The file operation on ${args[1]} took over ${TOOL_TIMEOUT_MS / 1000} s; try a smaller depth.`
          : `The answer about ${args[1]} is over ${limit} bytes; try a smaller depth.`,
      );
    }
    const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean);
    if (outcome.exitCode === 3) throw failureOf(lines.at(-1), args[1] ?? '');
    if (outcome.exitCode !== 0 || lines.length > maxLines) {
      throw new SandpoolError(
        'internal_error',
        `The sandbox's file tool failed on ${args[1]} (exit ${outcome.exitCode}); the sandbox may lack python3.`,
      );
    }
    return lines;
  }
}

function parseDetails(line: string | undefined): FileDetails {
  const parsed = detailsSchema.safeParse(safeJson(line));
  if (!parsed.success) {
    throw new SandpoolError('internal_error', 'The sandbox answered a file operation malformed.');
  }
  return parsed.data;
}

function failureOf(line: string | undefined, path: string): SandpoolError {
  const parsed = failureSchema.safeParse(safeJson(line));
  if (!parsed.success) {
    return new SandpoolError('internal_error', `The sandbox's file tool failed on ${path}.`);
  }
  const { error, message } = parsed.data;
  if (error === 'not_dir') return new SandpoolError('invalid_path', `${path} is not a directory.`);
  if (error === 'too_many') {
    return new SandpoolError(
      'payload_too_large',
      `${path} holds ${message}; list with a smaller depth.`,
    );
  }
  return fileErrorFor(error, path, message);
}

function safeJson(line: string | undefined): unknown {
  try {
    return JSON.parse(line ?? '');
  } catch {
    return undefined;
  }
}

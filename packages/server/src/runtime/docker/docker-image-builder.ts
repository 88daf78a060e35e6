import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import {
  copyFile,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import Docker from 'dockerode';
import tar from 'tar-fs';

/** The tag built when none is given: the foundation layer every template starts from. */
export const DEFAULT_FOUNDATION_TAG = 'sandpool/foundation:latest';
/** The public base the Dockerfile names when nothing else is passed in. */
export const DEFAULT_BASE_IMAGE = 'debian:bookworm-slim';
/**
 * The base built from Debian packages where no registry answers: this tag names the latest one
 * built (for deploy/'s Dockerfiles); builds use `localBaseTag(hash)`, one tag per package list, so
 * two package lists on one engine never take the tag from each other and rebuild in turn.
 */
export const LOCAL_BASE_TAG = 'sandpool/debian-base:bookworm';
/** Label on the sandbox image: the hash of everything its build depends on. */
export const INPUT_HASH_LABEL = 'sandpool.input-hash';
/** Label on the local base: the hash of the recipe (suite, variant, packages) it was made from. */
export const BASE_HASH_LABEL = 'sandpool.base-hash';
/** The file in the build context listing the image's Debian packages, one a line. */
export const PACKAGES_FILE = 'packages.txt';

const DEBIAN_SUITE = 'bookworm';
const DEFAULT_PULL_TIMEOUT_MS = 60_000;
/** Directories whose contents the engine provides at run time; never packed into the base. */
const RUNTIME_DIRS = new Set(['dev', 'proc', 'sys']);

export interface ImageBuildOptions {
  /** Tag of the image to build. Default `sandpool/foundation:latest`. */
  tag?: string;
  /** The build context: a directory holding the Dockerfile and `packages.txt`. */
  contextDir: string;
  /**
   * Files from outside the context to add to it, keyed by their path inside the context, so the
   * Dockerfile can COPY them and the input hash covers them. Default: the in-sandbox agent of the
   * repository holding the context (see `sandpoolAgentFiles`).
   */
  extraFiles?: Record<string, string>;
  /**
   * Image passed as the `BASE_IMAGE` build argument. Default: `debian:bookworm-slim` when the engine
   * has it or can pull it, else a local base built with debootstrap (needs root).
   */
  baseImage?: string;
  /** The Dockerfile's path inside the context. Default `Dockerfile`. */
  dockerfile?: string;
  /** Labels added to the image (the input hash label is always added). */
  labels?: Record<string, string>;
  /** Build even when an image with the same input hash exists, without the layer cache. */
  force?: boolean;
  /** How long a pull of the base may take before the builder gives up on registries. Default 60 s. */
  pullTimeoutMs?: number;
}

export interface ImageBuildResult {
  tag: string;
  /** False when an image with the same input hash already existed. */
  built: boolean;
  inputHash: string;
  baseImage: string;
}

/**
 * Builds the sandbox image, and the Debian base it starts from when no registry is reachable.
 * Idempotent: an image whose `sandpool.input-hash` label matches the context and base is reused.
 */
export class DockerImageBuilder {
  constructor(
    private readonly docker: Docker = new Docker(),
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  async build(options: ImageBuildOptions): Promise<ImageBuildResult> {
    const extraFiles = Object.entries(
      options.extraFiles ?? sandpoolAgentFiles(path.resolve(options.contextDir)),
    );
    if (extraFiles.length === 0)
      return this.buildContext(options, path.resolve(options.contextDir));
    // A staged copy of the context plus the extra files: the hash and the build see the same tree.
    const staged = await mkdtemp(path.join(tmpdir(), 'sandpool-context-'));
    try {
      await cp(path.resolve(options.contextDir), staged, { recursive: true });
      for (const [relative, source] of extraFiles) {
        const target = path.resolve(staged, relative);
        if (!target.startsWith(`${staged}${path.sep}`)) {
          throw new Error(`extra file ${relative} would land outside the build context`);
        }
        await mkdir(path.dirname(target), { recursive: true });
        await copyFile(source, target);
      }
      return await this.buildContext(options, staged);
    } finally {
      await rm(staged, { recursive: true, force: true });
    }
  }

  private async buildContext(
    options: ImageBuildOptions,
    contextDir: string,
  ): Promise<ImageBuildResult> {
    const tag = options.tag ?? DEFAULT_FOUNDATION_TAG;
    await this.ping();

    const baseImage = await this.resolveBase(options, contextDir);
    const baseId = await this.imageId(baseImage);
    if (baseId === undefined) throw new Error(`base image ${baseImage} vanished during the build`);
    const dockerfile = options.dockerfile ?? 'Dockerfile';
    if (!existsSync(path.join(contextDir, dockerfile))) {
      throw new Error(`no ${dockerfile} in the build context ${options.contextDir}`);
    }
    // The Dockerfile's name and the labels change the image, so they are inputs too.
    const inputHash = await computeInputHash(contextDir, baseId, {
      dockerfile,
      ...options.labels,
    });

    if (!options.force && (await this.imageLabel(tag, INPUT_HASH_LABEL)) === inputHash) {
      this.log(`${tag} already has input hash ${inputHash.slice(0, 12)}; not rebuilding`);
      return { tag, built: false, inputHash, baseImage };
    }

    this.log(`building ${tag} from ${baseImage}`);
    const context = packDirectory(contextDir);
    const stream = await this.docker.buildImage(context, {
      t: tag,
      dockerfile,
      buildargs: { BASE_IMAGE: baseImage },
      labels: { ...options.labels, [INPUT_HASH_LABEL]: inputHash },
      rm: true,
      forcerm: true,
      nocache: options.force === true,
    });
    await this.followProgress(stream, 'build');

    if ((await this.imageLabel(tag, INPUT_HASH_LABEL)) !== inputHash) {
      throw new Error(`the build of ${tag} finished but the engine has no image with its label`);
    }
    return { tag, built: true, inputHash, baseImage };
  }

  /** The explicit base, else the public Debian image, else the local debootstrap base. */
  private async resolveBase(options: ImageBuildOptions, contextDir: string): Promise<string> {
    const timeoutMs = options.pullTimeoutMs ?? DEFAULT_PULL_TIMEOUT_MS;
    if (options.baseImage !== undefined) {
      if ((await this.imageId(options.baseImage)) !== undefined) return options.baseImage;
      if (await this.tryPull(options.baseImage, timeoutMs)) return options.baseImage;
      throw new Error(
        `base image ${options.baseImage} is not on this engine and could not be pulled; ` +
          'load it first or omit --base-image to build a local Debian base',
      );
    }
    if ((await this.imageId(DEFAULT_BASE_IMAGE)) !== undefined) return DEFAULT_BASE_IMAGE;

    // A local base made earlier is preferred over a pull: the result then does not flip between
    // bases (and rebuild) depending on whether a registry happened to answer this time.
    const packages = await readPackageList(contextDir);
    const baseHash = localBaseHash(packages);
    const hashedTag = localBaseTag(baseHash);
    if ((await this.imageLabel(hashedTag, BASE_HASH_LABEL)) === baseHash) {
      this.log(`using local base ${hashedTag}`);
      return hashedTag;
    }
    // A base built before the hashed tags existed: name it by its hash too.
    if ((await this.imageLabel(LOCAL_BASE_TAG, BASE_HASH_LABEL)) === baseHash) {
      await this.tag(LOCAL_BASE_TAG, hashedTag);
      this.log(`using local base ${hashedTag}`);
      return hashedTag;
    }
    if (await this.tryPull(DEFAULT_BASE_IMAGE, timeoutMs)) return DEFAULT_BASE_IMAGE;

    await this.buildLocalBase(packages, baseHash);
    await this.tag(hashedTag, LOCAL_BASE_TAG);
    return hashedTag;
  }

  private async tag(source: string, target: string): Promise<void> {
    const [repo, tag] = splitTag(target);
    await this.docker.getImage(source).tag({ repo, tag });
  }

  private async tryPull(image: string, timeoutMs: number): Promise<boolean> {
    this.log(`pulling ${image}`);
    try {
      const stream = await this.docker.pull(image, { abortSignal: AbortSignal.timeout(timeoutMs) });
      await this.followProgress(stream, 'pull');
      return (await this.imageId(image)) !== undefined;
    } catch (error) {
      this.log(`could not pull ${image}: ${firstLine(errorMessage(error))}`);
      return false;
    }
  }

  /** debootstrap a minimal Debian with the image's packages, then `docker import` it. */
  private async buildLocalBase(packages: string[], baseHash: string): Promise<void> {
    const target = localBaseTag(baseHash);
    if (process.getuid?.() !== 0) {
      throw new Error(
        `no base image: ${DEFAULT_BASE_IMAGE} is not available and building ${target} ` +
          'with debootstrap needs root; run `sudo bash scripts/provision.sh` or pass --base-image',
      );
    }
    const rootfs = await mkdtemp(path.join(tmpdir(), 'sandpool-rootfs-'));
    try {
      const args = [
        '--variant=minbase',
        `--include=${packages.join(',')}`,
        DEBIAN_SUITE,
        rootfs,
        ...(await findDebianMirror()),
      ];
      this.log(`building ${target}: debootstrap ${args.join(' ')}`);
      await runLogged('debootstrap', args, (line) => this.log(`debootstrap: ${line}`)).catch(
        (error: unknown) => {
          if (isMissingProgram(error)) {
            throw new Error('debootstrap is not installed: apt-get install debootstrap', {
              cause: error,
            });
          }
          throw error;
        },
      );
      await unmountUnder(rootfs);
      await scrubRootfs(rootfs);

      this.log(`importing ${target}`);
      const [repo, importTag] = splitTag(target);
      const archive = packDirectory(rootfs, {
        umask: 0, // keep modes as they are on disk (/tmp is 1777), not masked by ours
        strict: false, // skip fifos and device nodes; the engine provides /dev
        ignore: (name) => isRuntimeDirContent(path.relative(rootfs, name)),
      });
      const stream = await this.docker.importImage(archive, {
        repo,
        tag: importTag,
        message: `debootstrap --variant=minbase ${DEBIAN_SUITE}`,
        changes: [
          `LABEL ${BASE_HASH_LABEL}=${baseHash}`,
          'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          'ENV LANG=C.UTF-8',
          'CMD ["/bin/bash"]',
        ],
      });
      await this.followProgress(stream, 'import');
      if ((await this.imageLabel(target, BASE_HASH_LABEL)) !== baseHash) {
        throw new Error(`the import of ${target} finished but the image is missing`);
      }
    } finally {
      await removeRootfs(rootfs, this.log);
    }
  }

  private async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error) {
      throw new Error(
        `the Docker engine does not answer (${firstLine(errorMessage(error))}); ` +
          'start it, e.g. with `bash scripts/provision.sh`',
        { cause: error },
      );
    }
  }

  private async imageId(image: string): Promise<string | undefined> {
    const info = await this.inspect(image);
    return info?.Id;
  }

  private async imageLabel(image: string, label: string): Promise<string | undefined> {
    const info = await this.inspect(image);
    // Labels is null, not {}, on images that have none.
    const labels = (info?.Config.Labels ?? {}) as Record<string, string | undefined>;
    return labels[label];
  }

  private async inspect(image: string): Promise<Docker.ImageInspectInfo | undefined> {
    try {
      return await this.docker.getImage(image).inspect();
    } catch (error) {
      if (statusCode(error) === 404) return undefined;
      throw error;
    }
  }

  /** Logs the engine's progress messages and fails with the first error the stream reports. */
  private followProgress(stream: NodeJS.ReadableStream, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let failure: string | undefined;
      this.docker.modem.followProgress(
        stream,
        (error: Error | null) => {
          if (error) reject(error);
          else if (failure !== undefined) reject(new Error(`${what} failed: ${failure}`));
          else resolve();
        },
        (event: unknown) => {
          const message = progressMessage(event);
          if (message.error !== undefined) failure ??= message.error;
          if (message.text !== undefined) this.log(message.text);
        },
      );
    });
  }
}

/** Where the sandbox Dockerfile COPYs the in-sandbox agent from. */
export const AGENT_IN_CONTEXT = 'agent/sandpool_agent.py';

/**
 * packages/agent/sandpool_agent.py of the repository whose images/<name> is the context, as an
 * extra context file; none when the context ships its own agent or is not in this repository.
 */
export function sandpoolAgentFiles(contextDir: string): Record<string, string> {
  if (existsSync(path.join(contextDir, AGENT_IN_CONTEXT))) return {};
  const agent = path.resolve(contextDir, '..', '..', 'packages', 'agent', 'sandpool_agent.py');
  return existsSync(agent) ? { [AGENT_IN_CONTEXT]: agent } : {};
}

/**
 * sha256 over the context (sorted relative paths, file types and contents) and the base image id:
 * equal hashes mean a rebuild would produce the same image.
 */
export async function computeInputHash(
  contextDir: string,
  baseImageId: string,
  settings: Record<string, string> = {},
): Promise<string> {
  const hash = createHash('sha256');
  hash.update('sandpool-image-input v1\0');
  hash.update(`base\0${baseImageId}\0`);
  // Left out when only the defaults apply, so images built before these settings keep their hash.
  const named = Object.entries(settings)
    .filter(([key, value]) => !(key === 'dockerfile' && value === 'Dockerfile'))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [key, value] of named) hash.update(`setting\0${key}\0${value}\0`);
  for (const relative of await listContextFiles(contextDir)) {
    const absolute = path.join(contextDir, relative);
    const info = await stat(absolute).catch(() => undefined);
    const link = await readlink(absolute).catch(() => undefined);
    if (link !== undefined) {
      hash.update(`link\0${relative}\0${link}\0`);
    } else if (info !== undefined) {
      const content = await readFile(absolute);
      // The executable bit survives into the image, so it is part of the input.
      const executable = (info.mode & 0o111) !== 0 ? 'x' : '-';
      hash.update(`file\0${relative}\0${executable}\0${content.length}\0`);
      hash.update(content);
    }
  }
  return hash.digest('hex');
}

/** Every file and symlink under `dir`, as sorted '/'-separated relative paths. */
export async function listContextFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() || entry.isSymbolicLink())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .map((relative) => relative.split(path.sep).join('/'))
    .sort();
}

/** The package names in the context's `packages.txt`, without comments and blank lines. */
export async function readPackageList(contextDir: string): Promise<string[]> {
  const file = path.join(contextDir, PACKAGES_FILE);
  const text = await readFile(file, 'utf8').catch((error: unknown) => {
    throw new Error(`cannot read ${file}: ${errorMessage(error)}`, { cause: error });
  });
  const packages = text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
  const invalid = packages.find((name) => !/^[a-z0-9][a-z0-9+.-]+$/.test(name));
  if (invalid !== undefined) throw new Error(`${file}: "${invalid}" is not a package name`);
  if (packages.length === 0) throw new Error(`${file} lists no packages`);
  return packages;
}

/** The local base of one recipe: `sandpool/debian-base:bookworm-<first 12 hex of its hash>`. */
export function localBaseTag(baseHash: string): string {
  return `${LOCAL_BASE_TAG}-${baseHash.slice(0, 12)}`;
}

/** Identifies the local base's recipe; the mirror is left out, it does not change the result. */
export function localBaseHash(packages: string[]): string {
  const recipe = ['sandpool-debian-base v2', DEBIAN_SUITE, 'minbase', ...[...packages].sort()];
  return createHash('sha256').update(recipe.join('\n')).digest('hex');
}

interface ProgressMessage {
  text?: string;
  error?: string;
}

/** One engine progress object: `{stream}` or `{status, id}` lines, `{error, errorDetail}` failures. */
function progressMessage(event: unknown): ProgressMessage {
  if (typeof event !== 'object' || event === null) return {};
  const record = event as Record<string, unknown>;
  if (typeof record.error === 'string') return { error: record.error.trim(), text: record.error };
  if (typeof record.stream === 'string') {
    const text = record.stream.trimEnd();
    return text === '' ? {} : { text };
  }
  // Pull progress bars would flood the log; the status lines without them are enough.
  if (typeof record.status === 'string' && record.progressDetail === undefined) {
    const id = typeof record.id === 'string' ? `${record.id}: ` : '';
    return { text: `${id}${record.status}` };
  }
  return {};
}

/** The Debian mirror this host uses, as debootstrap's last argument; none means its default. */
async function findDebianMirror(): Promise<string[]> {
  const fromEnv = process.env.SANDPOOL_DEBIAN_MIRROR;
  if (fromEnv !== undefined && fromEnv !== '') return [fromEnv];
  const sourcesDir = '/etc/apt/sources.list.d';
  const files = await readdir(sourcesDir).catch(() => [] as string[]);
  for (const name of files.filter((file) => file.endsWith('.sources')).sort()) {
    const text = await readFile(path.join(sourcesDir, name), 'utf8').catch(() => '');
    // deb822 stanzas: the one that serves the suite itself (not -security or -updates).
    for (const stanza of text.split(/\n\s*\n/)) {
      const uris = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.split(/\s+/) ?? [];
      if (uris !== undefined && suites.includes(DEBIAN_SUITE)) return [uris];
    }
  }
  const list = await readFile('/etc/apt/sources.list', 'utf8').catch(() => '');
  const match = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${DEBIAN_SUITE}\\s`, 'm').exec(
    list,
  );
  return match?.[1] !== undefined ? [match[1]] : [];
}

/** Runs a program, passing each output line to `onLine`; rejects on a non-zero exit. */
function runLogged(command: string, args: string[], onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        onLine(line);
        tail.push(line);
        if (tail.length > 20) tail.shift();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        const how = signal !== null ? `signal ${signal}` : `exit code ${String(code)}`;
        reject(new Error(`${command} failed (${how}):\n${tail.join('\n')}`));
      }
    });
  });
}

/** debootstrap binds /dev, /proc and /sys into the target; a killed run can leave them there. */
async function mountsUnder(dir: string): Promise<string[]> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((mountPoint): mountPoint is string => mountPoint !== undefined)
    .map((mountPoint) => mountPoint.replace(/\\040/g, ' '))
    .filter((mountPoint) => mountPoint.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

async function unmountUnder(dir: string): Promise<void> {
  for (const mountPoint of await mountsUnder(dir)) {
    await runLogged('umount', ['--lazy', mountPoint], () => undefined).catch(() => undefined);
  }
}

/** Removes the rootfs, but never through a mount (that would delete the host's /dev). */
async function removeRootfs(rootfs: string, log: (line: string) => void): Promise<void> {
  await unmountUnder(rootfs);
  const left = await mountsUnder(rootfs);
  if (left.length > 0) {
    log(`not removing ${rootfs}: still mounted at ${left.join(', ')}`);
    return;
  }
  await rm(rootfs, { recursive: true, force: true });
}

/**
 * Trims the rootfs the way Debian's -slim images are trimmed (documentation, manuals, translations,
 * apt lists, downloaded .debs; copyright files stay) and drops facts about the build host. A dpkg
 * config keeps later installs in the image trimmed too.
 */
async function scrubRootfs(rootfs: string): Promise<void> {
  const emptyDir = async (relative: string, keep: (name: string) => boolean): Promise<void> => {
    const dir = path.join(rootfs, relative);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!keep(name)) await rm(path.join(dir, name), { recursive: true, force: true });
    }
  };
  await emptyDir('var/cache/apt/archives', (name) => !name.endsWith('.deb'));
  await emptyDir('var/lib/apt/lists', (name) => name === 'lock' || name === 'partial');
  await emptyDir('usr/share/man', () => false);
  await emptyDir('usr/share/info', () => false);
  await emptyDir('usr/share/locale', (name) => name === 'locale.alias');
  for (const pkg of await readdir(path.join(rootfs, 'usr/share/doc')).catch(() => [] as string[])) {
    await emptyDir(path.join('usr/share/doc', pkg), (name) => name === 'copyright');
  }
  await writeFile(
    path.join(rootfs, 'etc/dpkg/dpkg.cfg.d/sandpool-slim'),
    [
      'path-exclude /usr/share/doc/*',
      'path-include /usr/share/doc/*/copyright',
      'path-exclude /usr/share/man/*',
      'path-exclude /usr/share/info/*',
      'path-exclude /usr/share/locale/*',
      'path-include /usr/share/locale/locale.alias',
      '',
    ].join('\n'),
  );
  await rm(path.join(rootfs, 'etc/hostname'), { force: true });
  await writeFile(path.join(rootfs, 'etc/resolv.conf'), '');
}

/** tar-fs's options, plus the `umask` it honours but its type definitions lack. */
type PackOptions = tar.PackOptions & { umask?: number };

/** A tar of `dir` as a Node stream: tar-fs makes a streamx stream, which dockerode's types refuse. */
function packDirectory(dir: string, options: PackOptions = {}): Readable {
  return Readable.from(tar.pack(dir, options), { objectMode: false });
}

/** True for entries inside dev/, proc/ or sys/ (the directories themselves are kept). */
function isRuntimeDirContent(relative: string): boolean {
  const parts = relative.split(path.sep);
  return parts.length > 1 && parts[0] !== undefined && RUNTIME_DIRS.has(parts[0]);
}

function splitTag(image: string): [string, string] {
  const colon = image.lastIndexOf(':');
  return colon > image.lastIndexOf('/')
    ? [image.slice(0, colon), image.slice(colon + 1)]
    : [image, 'latest'];
}

function statusCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' ? code : undefined;
}

function isMissingProgram(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ENOENT'
  );
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

interface ImageBuildFlags {
  tag?: string;
  baseImage?: string;
  force?: boolean;
  context?: string;
}

/**
 * Registers `sandpool image build`: builds the sandbox image (and, where no registry answers, its
 * Debian base) unless an image with the same inputs exists. Progress goes to stderr, the one-line
 * result to stdout.
 */
export function registerImageCommand(program: Command): void {
  const image = program.command('image').description('Manage the sandbox image');
  image
    .command('build')
    .description('Build the sandbox image if its Dockerfile, files or base changed')
    // No commander default: the builder's own (DEFAULT_SANDBOX_TAG) applies, so --help need not
    // load the builder and its Docker client to show it.
    .option('--tag <tag>', 'image tag to build (default: "sandpool/sandbox:latest")')
    .option('--base-image <image>', 'base image (default: debian:bookworm-slim or a local base)')
    .option('--force', 'rebuild even when the image is up to date, without the layer cache')
    .option('--context <dir>', 'build context (default: images/sandbox of this repository)')
    .action(async (flags: ImageBuildFlags) => {
      try {
        await buildImage(flags);
      } catch (error) {
        process.stderr.write(`sandpool image build: ${errorMessage(error)}\n`);
        process.exitCode = 1;
      }
    });
}

async function buildImage(flags: ImageBuildFlags): Promise<void> {
  // Loaded here so the other commands start without dockerode and tar-fs.
  const { DockerImageBuilder } = await import('../runtime/docker/docker-image-builder.js');
  const contextDir = flags.context ?? findSandboxContext();
  const builder = new DockerImageBuilder(undefined, (line) => process.stderr.write(`${line}\n`));
  const startedMs = performance.now();
  const result = await builder.build({
    contextDir,
    tag: flags.tag,
    baseImage: flags.baseImage,
    force: flags.force === true,
  });
  const seconds = ((performance.now() - startedMs) / 1000).toFixed(1);
  process.stdout.write(
    result.built
      ? `image ${result.tag} ready (built in ${seconds} s)\n`
      : `image ${result.tag} up to date\n`,
  );
}

/**
 * `images/sandbox` of the repository this module lives in, found from the module's own path so the
 * command works from any working directory (e.g. `npx sandpool` at the repository root).
 */
function findSandboxContext(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'images', 'sandbox');
    if (existsSync(path.join(candidate, 'Dockerfile'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error('cannot find images/sandbox above this installation; pass --context <dir>');
    }
    dir = parent;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

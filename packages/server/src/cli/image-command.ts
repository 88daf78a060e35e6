import type { Command } from 'commander';
import { BASE_TEMPLATE_IMAGE, DEFAULT_TEMPLATE } from '../templates/template-spec.js';
import { buildTemplates } from './template-command.js';

interface ImageBuildFlags {
  tag: string;
  baseImage?: string;
  force?: boolean;
  foundationTag?: string;
}

/**
 * Registers `sandpool image build`, the name earlier releases used: an alias for
 * `sandpool template build base` (the foundation, then the `base` template on it).
 */
export function registerImageCommand(program: Command): void {
  const image = program.command('image').description('Manage the sandbox image (see `template`)');
  image
    .command('build')
    .description(
      `Build the ${DEFAULT_TEMPLATE} template (same as \`sandpool template build base\`)`,
    )
    .option('--tag <tag>', 'image tag to build', BASE_TEMPLATE_IMAGE)
    .option('--base-image <image>', 'base image (default: debian:bookworm-slim or a local base)')
    .option('--force', 'rebuild even when the image is up to date, without the layer cache')
    .option(
      '--foundation-tag <tag>',
      'tag of the foundation layer (default: "sandpool/foundation:latest")',
    )
    .action(async (flags: ImageBuildFlags) => {
      try {
        await buildTemplates([DEFAULT_TEMPLATE], flags);
      } catch (error) {
        process.stderr.write(
          `sandpool image build: ${error instanceof Error ? error.message : String(error)}\n`,
        );
        process.exitCode = 1;
      }
    });
}

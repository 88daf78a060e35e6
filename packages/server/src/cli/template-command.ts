import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { defaultTemplateImage, templateNameProblem } from '../templates/template-spec.js';

/** What `template build` (and its alias `image build`) accepts. */
export interface TemplateBuildFlags {
  dockerfile?: string;
  tag?: string;
  /** Default: the builder's (`sandpool/foundation:latest`). */
  foundationTag?: string;
  baseImage?: string;
  force?: boolean;
  all?: boolean;
}

/**
 * Registers `sandpool template build NAME...` and `sandpool template list`. Progress goes to
 * stderr, one result line per template to stdout.
 */
export function registerTemplateCommand(program: Command): void {
  const template = program
    .command('template')
    .description('Build and list sandbox templates (a named image, each with its own warm pool)');
  template
    .command('build')
    .description(
      'Build templates whose Dockerfile, files or foundation changed (the shipped ones live in images/templates/<name>/)',
    )
    .argument('[names...]', 'templates to build (e.g. base code-interpreter)')
    .option('--all', 'build every template in images/templates/')
    .option('--dockerfile <path>', "the template's Dockerfile; its directory is the build context")
    .option(
      '--tag <tag>',
      'image tag (default: sandpool/template-NAME:latest; base: sandpool/sandbox:latest)',
    )
    .option(
      '--foundation-tag <tag>',
      'tag of the foundation layer (default: "sandpool/foundation:latest")',
    )
    .option(
      '--base-image <image>',
      'base of the foundation (default: debian:bookworm-slim or a local base)',
    )
    .option('--force', 'rebuild even when up to date, without the layer cache')
    .addHelpText(
      'after',
      '\nExamples:\n  sandpool template build base\n  sandpool template build --all\n  sandpool template build my-data --dockerfile ./my-data/Dockerfile',
    )
    .action(async (names: string[], flags: TemplateBuildFlags) => {
      try {
        await buildTemplates(names, flags);
      } catch (error) {
        process.stderr.write(`sandpool template build: ${errorMessage(error)}\n`);
        process.exitCode = 1;
      }
    });
  template
    .command('list')
    .description(
      'The templates shipped in images/templates/ and the template images on this engine',
    )
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }) => {
      try {
        await listTemplates(flags.json === true);
      } catch (error) {
        process.stderr.write(`sandpool template list: ${errorMessage(error)}\n`);
        process.exitCode = 1;
      }
    });
}

/** Builds the named templates (or all shipped ones) one after the other; shared with `image build`. */
export async function buildTemplates(names: string[], flags: TemplateBuildFlags): Promise<void> {
  const images = findImagesDir();
  const chosen = flags.all === true ? shippedTemplates(images) : names;
  if (chosen.length === 0) {
    throw new Error(`name a template (${shippedTemplates(images).join(', ')}) or pass --all`);
  }
  if (chosen.length > 1 && (flags.dockerfile !== undefined || flags.tag !== undefined)) {
    throw new Error('--dockerfile and --tag apply to one template; name only one');
  }
  // Loaded here so the other commands start without dockerode and tar-fs.
  const { DEFAULT_FOUNDATION_TAG, DockerTemplateBuilder } =
    await import('../runtime/docker/docker-template-builder.js');
  const builder = new DockerTemplateBuilder(undefined, (line) => process.stderr.write(`${line}\n`));
  for (const name of chosen) {
    const problem = templateNameProblem(name);
    if (problem !== undefined) throw new Error(problem);
    const dockerfile = path.resolve(
      flags.dockerfile ?? path.join(images, 'templates', name, 'Dockerfile'),
    );
    if (!existsSync(dockerfile)) {
      throw new Error(
        flags.dockerfile === undefined
          ? `no template ${name} in ${path.join(images, 'templates')}; pass --dockerfile <path>`
          : `no Dockerfile at ${dockerfile}`,
      );
    }
    const startedMs = performance.now();
    const result = await builder.build({
      name,
      dockerfile,
      tag: flags.tag ?? defaultTemplateImage(name),
      foundationContext: path.join(images, 'foundation'),
      foundationTag: flags.foundationTag ?? DEFAULT_FOUNDATION_TAG,
      baseImage: flags.baseImage,
      force: flags.force === true,
    });
    const seconds = ((performance.now() - startedMs) / 1000).toFixed(1);
    process.stdout.write(
      result.built
        ? `template ${name}: image ${result.tag} ready (built in ${seconds} s)\n`
        : `template ${name}: image ${result.tag} up to date\n`,
    );
  }
}

interface TemplateRow {
  name: string;
  image: string;
  built: boolean;
  shipped: boolean;
  size_mb?: number;
  created_at?: string;
}

async function listTemplates(json: boolean): Promise<void> {
  const { listTemplateImages } = await import('../runtime/docker/docker-template-builder.js');
  const rows = new Map<string, TemplateRow>();
  for (const name of shippedTemplates(findImagesDir())) {
    const image = defaultTemplateImage(name);
    rows.set(`${name} ${image}`, { name, image, built: false, shipped: true });
  }
  for (const image of await listTemplateImages()) {
    const key = `${image.name} ${image.tag}`;
    rows.set(key, {
      name: image.name,
      image: image.tag,
      built: true,
      shipped: rows.get(key)?.shipped ?? false,
      size_mb: Math.round(image.sizeBytes / 1e6),
      created_at: image.createdAt,
    });
  }
  const list = [...rows.values()].sort(
    (a, b) => a.name.localeCompare(b.name) || a.image.localeCompare(b.image),
  );
  if (json) {
    process.stdout.write(`${JSON.stringify({ templates: list }, null, 2)}\n`);
    return;
  }
  const table = [['NAME', 'IMAGE', 'STATUS', 'SIZE', 'CREATED']];
  for (const row of list) {
    table.push([
      row.name,
      row.image,
      row.built ? 'built' : `not built: sandpool template build ${row.name}`,
      row.size_mb === undefined ? '-' : `${row.size_mb} MB`,
      row.created_at ?? '-',
    ]);
  }
  process.stdout.write(formatTable(table));
}

/** Columns padded to their widest cell. */
function formatTable(table: string[][]): string {
  const widths = (table[0] ?? []).map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  return table
    .map(
      (row) =>
        `${row
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

/** The template names under images/templates/ (each a directory with a Dockerfile). */
export function shippedTemplates(imagesDir: string): string[] {
  const dir = path.join(imagesDir, 'templates');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(path.join(dir, entry.name, 'Dockerfile')))
    .map((entry) => entry.name)
    .filter((name) => templateNameProblem(name) === undefined)
    .sort();
}

/**
 * `images/` of the repository this module lives in, found from the module's own path so the
 * command works from any working directory (e.g. `npx sandpool` at the repository root).
 */
export function findImagesDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'images');
    if (existsSync(path.join(candidate, 'foundation', 'Dockerfile'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error('cannot find images/foundation above this installation');
    }
    dir = parent;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

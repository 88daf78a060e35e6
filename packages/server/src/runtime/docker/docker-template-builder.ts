import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { AGENT_IMAGE_LABEL } from './docker-runtime.js';
import { DEFAULT_FOUNDATION_TAG, DockerImageBuilder } from './docker-image-builder.js';

export { DEFAULT_FOUNDATION_TAG };
/** Label on every template image: the template's name (`sandpool template list` reads it). */
export const TEMPLATE_LABEL = 'sandpool.template';

export interface TemplateBuildOptions {
  /** The template's name (checked by the caller). */
  name: string;
  /** Absolute path of the template's Dockerfile; its directory is the build context. */
  dockerfile: string;
  /** Tag of the template image. */
  tag: string;
  /** The foundation layer's build context (images/foundation). */
  foundationContext: string;
  /** Tag of the foundation layer. Default `sandpool/foundation:latest`. */
  foundationTag?: string;
  /** Base of the foundation (see `ImageBuildOptions.baseImage`). */
  baseImage?: string;
  /** Rebuild every layer, without the cache. */
  force?: boolean;
}

export interface TemplateBuildResult {
  name: string;
  tag: string;
  /** False when the template image was already up to date. */
  built: boolean;
  foundationTag: string;
  /** True when the Dockerfile starts from the foundation; false when the foundation's layers were added on top. */
  fromFoundation: boolean;
  inputHash: string;
}

/**
 * Builds a template: the foundation first, then the template's Dockerfile with `BASE_IMAGE` set
 * to it. A Dockerfile that starts from any other image is built as it is and then gets the
 * foundation's layers (sandbox user, agent, defaults) on top, so every template keeps the agent's
 * fast path. Every step is idempotent by its input hash, like `DockerImageBuilder`.
 */
export class DockerTemplateBuilder {
  private readonly images: DockerImageBuilder;

  constructor(
    private readonly docker: Docker = new Docker(),
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.images = new DockerImageBuilder(docker, log);
  }

  async build(options: TemplateBuildOptions): Promise<TemplateBuildResult> {
    const foundationTag = options.foundationTag ?? DEFAULT_FOUNDATION_TAG;
    const force = options.force === true;
    this.log(`foundation ${foundationTag}`);
    await this.images.build({
      contextDir: options.foundationContext,
      tag: foundationTag,
      baseImage: options.baseImage,
      force,
    });

    const contextDir = path.dirname(options.dockerfile);
    const dockerfile = path.basename(options.dockerfile);
    const labels = { [TEMPLATE_LABEL]: options.name };
    const fromFoundation = startsFromBaseImage(await readFile(options.dockerfile, 'utf8'));
    this.log(`template ${options.name} (${options.dockerfile})`);
    if (fromFoundation) {
      const result = await this.images.build({
        contextDir,
        dockerfile,
        tag: options.tag,
        baseImage: foundationTag,
        labels,
        extraFiles: {},
        force,
      });
      await this.checkAgent(result.tag);
      return { ...this.summary(options, foundationTag, true), ...result };
    }

    // Any other image: build it as written, then lay the foundation's Dockerfile over it.
    const stageTag = stageTagOf(options.tag);
    await this.images.build({
      contextDir,
      dockerfile,
      tag: stageTag,
      baseImage: foundationTag, // unused by the Dockerfile; keeps the hash tied to the foundation
      labels,
      extraFiles: {},
      force,
    });
    this.log(`adding the sandbox user and the agent to ${options.name}`);
    const result = await this.images.build({
      contextDir: options.foundationContext,
      tag: options.tag,
      baseImage: stageTag,
      labels,
      force,
    });
    await this.checkAgent(result.tag);
    return { ...this.summary(options, foundationTag, false), ...result };
  }

  private summary(options: TemplateBuildOptions, foundationTag: string, fromFoundation: boolean) {
    return { name: options.name, foundationTag, fromFoundation };
  }

  /** A template without the agent's label would run over `docker exec`: slower, and not what was asked. */
  private async checkAgent(tag: string): Promise<void> {
    const info = await this.docker.getImage(tag).inspect();
    const labels = (info.Config.Labels ?? {}) as Record<string, string | undefined>;
    if (labels[AGENT_IMAGE_LABEL] !== '1') {
      throw new Error(
        `${tag} lacks the ${AGENT_IMAGE_LABEL}=1 label of the foundation; does its Dockerfile override it?`,
      );
    }
  }
}

/**
 * True when the Dockerfile's last stage starts `FROM ${BASE_IMAGE}` (or `$BASE_IMAGE`): it builds on
 * the foundation the builder passes in.
 */
export function startsFromBaseImage(dockerfile: string): boolean {
  const froms = dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => /^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)/i.exec(line)?.[1])
    .filter((image): image is string => image !== undefined);
  const last = froms.at(-1);
  return last === '${BASE_IMAGE}' || last === '$BASE_IMAGE';
}

/** Where the unfinished image of an any-image template is kept: `repo:tag-stage`. */
export function stageTagOf(tag: string): string {
  const colon = tag.lastIndexOf(':');
  return colon > tag.lastIndexOf('/') ? `${tag}-stage` : `${tag}:latest-stage`;
}

/** A template image on the engine (it carries the `sandpool.template` label). */
export interface TemplateImage {
  name: string;
  tag: string;
  sizeBytes: number;
  /** ISO 8601. */
  createdAt: string;
}

/** Every tagged template image on the engine, one entry per tag (stage images left out). */
export async function listTemplateImages(docker: Docker = new Docker()): Promise<TemplateImage[]> {
  const images = await docker.listImages({ filters: { label: [TEMPLATE_LABEL] } });
  const found: TemplateImage[] = [];
  for (const image of images) {
    const name = image.Labels[TEMPLATE_LABEL];
    if (name === undefined) continue;
    for (const tag of image.RepoTags ?? []) {
      if (tag === '<none>:<none>' || tag.endsWith('-stage')) continue;
      found.push({
        name,
        tag,
        sizeBytes: image.Size,
        createdAt: new Date(image.Created * 1000).toISOString(),
      });
    }
  }
  return found;
}

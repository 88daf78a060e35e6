/**
 * What a worker serves: which templates, how many warm sandboxes of each, and from which image.
 * Pure parsing and naming, so the worker, the CLI and the tests agree on one set of rules.
 */

/** The template a session gets when its request names none. */
export const DEFAULT_TEMPLATE = 'base';
/** The template of the stateful code interpreter, pooled by default next to `base`. */
export const CODE_INTERPRETER_TEMPLATE = 'code-interpreter';
/** Warm sandboxes of a template listed without a count (other than `base`, which follows --pool-size). */
export const DEFAULT_TEMPLATE_POOL_SIZE = 1;
/**
 * The image of `base`: the name every earlier release ran, so `--image`, `SANDPOOL_IMAGE` and
 * existing configs keep describing it.
 */
export const BASE_TEMPLATE_IMAGE = 'sandpool/sandbox:latest';

/** One template a worker pools. */
export interface TemplateSpec {
  name: string;
  /** Warm sandboxes kept ready. */
  poolSize: number;
  /** Image its sandboxes run. */
  image: string;
}

const NAME = /^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/;
// Docker's reference grammar, loosely: registry/path:tag or @digest, no spaces or commas.
const IMAGE = /^[a-zA-Z0-9][a-zA-Z0-9._\-/:@]{0,254}$/;

/** Why `name` cannot name a template, or undefined when it can. */
export function templateNameProblem(name: string): string | undefined {
  return NAME.test(name)
    ? undefined
    : `template name "${name}" must be 1-48 lowercase letters, digits or '-', starting and ending with a letter or digit`;
}

/** The image `sandpool template build NAME` produces and a worker runs for NAME by default. */
export function defaultTemplateImage(name: string): string {
  return name === DEFAULT_TEMPLATE ? BASE_TEMPLATE_IMAGE : `sandpool/template-${name}:latest`;
}

export interface TemplateDefaults {
  /** `--pool-size`: the size of `base` when the spec gives none. */
  basePoolSize: number;
  /** `--image`: the image of `base` when the spec gives none. */
  baseImage: string;
  /** `--pool-max`: no template may ask for more. */
  maxPoolSize: number;
}

/** The spec a worker uses when `--templates` is not set. */
export function defaultTemplatesSpec(basePoolSize: number): string {
  return `${DEFAULT_TEMPLATE}=${basePoolSize},${CODE_INTERPRETER_TEMPLATE}=${DEFAULT_TEMPLATE_POOL_SIZE}`;
}

/**
 * Parses `--templates`: comma-separated `name[=count][@image]` entries, e.g.
 * `base=5,code-interpreter=2` or `base,data=1@registry.local/data:3`. A count of 0 serves the
 * template without keeping any warm (each session starts one). Throws an Error whose message says
 * what is wrong.
 */
export function parseTemplatesSpec(spec: string, defaults: TemplateDefaults): TemplateSpec[] {
  const entries = spec
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw new Error('--templates lists no template (e.g. base=5)');
  const seen = new Set<string>();
  const templates: TemplateSpec[] = [];
  for (const entry of entries) {
    const match = /^([^=@]+)(?:=([^@]*))?(?:@(.*))?$/.exec(entry);
    if (match === null) throw new Error(`--templates entry "${entry}" is not name[=count][@image]`);
    const [, rawName = '', rawCount, rawImage] = match;
    const name = rawName.trim();
    const problem = templateNameProblem(name);
    if (problem !== undefined) throw new Error(`--templates: ${problem}`);
    if (seen.has(name)) throw new Error(`--templates names ${name} twice`);
    seen.add(name);

    const isBase = name === DEFAULT_TEMPLATE;
    let poolSize = isBase ? defaults.basePoolSize : DEFAULT_TEMPLATE_POOL_SIZE;
    if (rawCount !== undefined) {
      const count = rawCount.trim();
      if (!/^\d{1,6}$/.test(count)) {
        throw new Error(`--templates: the count of ${name} must be a whole number, got "${count}"`);
      }
      poolSize = Number(count);
    }
    if (poolSize > defaults.maxPoolSize) {
      throw new Error(
        `--templates: ${name}=${poolSize} exceeds --pool-max (${defaults.maxPoolSize})`,
      );
    }

    let image = isBase ? defaults.baseImage : defaultTemplateImage(name);
    if (rawImage !== undefined) {
      if (!IMAGE.test(rawImage)) {
        throw new Error(`--templates: "${rawImage}" (the image of ${name}) is not an image name`);
      }
      image = rawImage;
    }
    templates.push({ name, poolSize, image });
  }
  return templates;
}

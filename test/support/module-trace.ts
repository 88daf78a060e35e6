import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runProcess, type Run } from './run-process.js';

// Loader hooks (they run on their own thread): every file a module import resolves to is
// appended to the file named in `data`. CommonJS `require` inside a package is not seen, but a
// package reached from ESM is, through its entry point; that is what the start-up checks need.
const HOOKS = `import { appendFileSync } from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.startsWith('file:')) appendFileSync(out, result.url + '\\n');
  return result;
}
`;

/** A finished run and the `file:` URLs of every ES module it loaded. */
export interface TracedRun extends Run {
  loaded: string[];
}

/** Runs a Node.js script with the module trace hooks and collects what it loaded. */
export async function runTracingModules(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<TracedRun> {
  const dir = await mkdtemp(join(tmpdir(), 'sandpool-trace-'));
  try {
    const out = join(dir, 'loaded.txt');
    await writeFile(out, '');
    await writeFile(join(dir, 'hooks.mjs'), HOOKS);
    const hooksUrl = pathToFileURL(join(dir, 'hooks.mjs')).href;
    await writeFile(
      join(dir, 'register.mjs'),
      `import { register } from 'node:module';\nregister(${JSON.stringify(hooksUrl)}, { data: { out: ${JSON.stringify(out)} } });\n`,
    );
    const run = await runProcess(
      process.execPath,
      ['--import', pathToFileURL(join(dir, 'register.mjs')).href, script, ...args],
      { env },
    );
    const loaded = [...new Set((await readFile(out, 'utf8')).split('\n').filter(Boolean))];
    return { ...run, loaded };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

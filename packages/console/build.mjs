// Bundles the console (TypeScript, xterm.js, uPlot and their CSS) into dist/ for the server's
// /ui route: no CDN, nothing fetched by the page at run time.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { build } from 'esbuild';

const here = new URL('.', import.meta.url).pathname;
const dist = `${here}dist`;
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  absWorkingDir: here,
  entryPoints: { console: 'src/main.ts' },
  outdir: dist,
  bundle: true,
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
await copyFile(`${here}src/index.html`, `${dist}/index.html`);

// Runs the test suites with Node's test runner: unit tests beside the code, then the black-box
// tests in test/ against the real Docker engine (and Redis) that scripts/provision.sh set up.
//   node scripts/run-tests.mjs [--unit | --blackbox] [file...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function testFiles(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...testFiles(path));
    else if (name.endsWith('.test.ts')) found.push(path);
  }
  return found.sort();
}

const args = process.argv.slice(2);
const named = args.filter((a) => !a.startsWith('--'));
const unit = testFiles(join(root, 'packages'));
const blackbox = testFiles(join(root, 'test'));
const files =
  named.length > 0
    ? named
    : args.includes('--unit')
      ? unit
      : args.includes('--blackbox')
        ? blackbox
        : [...unit, ...blackbox];

// Two files at once: each black-box file runs its own worker, and this machine has 2 cores.
const concurrency = process.env.SANDPOOL_TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-reporter=spec',
    ...files,
  ],
  { stdio: 'inherit', cwd: root },
);
process.exit(result.status ?? 1);

// Runs the test suites with Node's test runner: unit tests beside the code, then the black-box
// tests in test/ against the real Docker engine (and Redis) that scripts/provision.sh set up.
// Files named *.serial.test.ts disturb the whole machine (they stop the Docker engine), so they
// run last, alone. A closing line sums both runs.
//   node scripts/run-tests.mjs [--unit | --blackbox] [file...]
import { spawn } from 'node:child_process';
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

/** Runs one `node --test`, echoing its output, and reads its pass and fail counts. */
function runNodeTest(files, concurrency) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        `--test-concurrency=${concurrency}`,
        '--test-reporter=spec',
        ...files,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], cwd: root },
    );
    // The runner's summary lines (`ℹ pass N`...), kept as they pass: a long list of failures
    // after them must not push them out of reach (the last 4000 characters once held them).
    let tail = '';
    let summary = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      const lines = (tail + chunk.toString()).split('\n');
      tail = lines.pop() ?? ''; // an unfinished line waits for the rest of it
      for (const line of lines)
        if (/^ℹ (pass|fail|skipped) \d+$/.test(line)) summary += `${line}\n`;
    });
    child.on('close', (code) => {
      const count = (name) => Number(new RegExp(`ℹ ${name} (\\d+)`).exec(summary)?.[1] ?? 0);
      resolve({
        code: code ?? 1,
        passed: count('pass'),
        failed: count('fail'),
        skipped: count('skipped'),
      });
    });
  });
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
const serial = files.filter((f) => f.includes('.serial.'));
const parallel = files.filter((f) => !f.includes('.serial.'));

// Two files at once: each black-box file runs its own worker, and this machine has 2 cores.
const runs = [];
if (parallel.length > 0)
  runs.push(await runNodeTest(parallel, process.env.SANDPOOL_TEST_CONCURRENCY ?? '2'));
if (serial.length > 0) runs.push(await runNodeTest(serial, '1'));

// A run that failed outside any test (a hook, a crash) counts as one failure at least.
const sum = (key) =>
  runs.reduce((n, r) => n + (key === 'failed' && r.code !== 0 ? Math.max(1, r.failed) : r[key]), 0);
const failedRun = runs.some((r) => r.code !== 0);
console.log(`\n${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped`);
process.exit(failedRun || sum('failed') > 0 ? 1 : 0);

// The E2B face's figure (issue 13, item 11): create plus the first command with the published
// `e2b` SDK against sandpool, next to the same with sandpool's own SDK, in one run on one worker.
// Called by run-bench.ts; also runs alone:
//   node --import tsx bench/e2b-bench.ts
import { pathToFileURL } from 'node:url';
import { Sandbox as SandpoolSandbox } from '@sandpool/client';
import { Sandbox as E2bSandbox } from 'e2b';
import { BenchWorker } from './bench-worker.js';
import { summarize, type Summary } from './stats.js';

const ROUNDS = 15;
const POOL_SIZE = 3;

export interface E2bBenchRow {
  name: string;
  summary: Summary;
}

export interface E2bBenchResult {
  rows: E2bBenchRow[];
  /** E2B SDK median over sandpool SDK median. */
  e2b_over_sandpool: number;
}

/**
 * Alternates the two clients round by round (so drift on a shared machine hits both alike), each
 * round a fresh sandbox from the warm pool and one `echo hi`; the sandbox is killed outside the
 * timing and the pool refilled before the next round.
 */
export async function e2bBench(
  runId: string,
  step: (text: string) => void,
  port = 5876,
): Promise<E2bBenchResult> {
  step('E2B SDK vs sandpool SDK: create + first command');
  const worker = await BenchWorker.start({
    port,
    workerId: `bench-${runId}-e2b`,
    poolSize: POOL_SIZE,
  });
  const e2b: number[] = [];
  const native: number[] = [];
  const options = {
    apiUrl: `${worker.url}/e2b`,
    sandboxUrl: `${worker.url}/e2b/sandbox`,
    apiKey: 'bench',
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      let started = performance.now();
      const sandbox = await E2bSandbox.create(options);
      const result = await sandbox.commands.run('echo hi');
      e2b.push(performance.now() - started);
      if (result.stdout !== 'hi\n') throw new Error(`e2b: unexpected output ${result.stdout}`);
      await sandbox.kill();
      await worker.waitForPool();

      started = performance.now();
      const own = await SandpoolSandbox.create({ url: worker.url });
      const exec = await own.exec('echo hi');
      native.push(performance.now() - started);
      if (exec.stdout !== 'hi\n') throw new Error(`sandpool: unexpected output ${exec.stdout}`);
      await own.close();
      await worker.waitForPool();
    }
  } finally {
    await worker.stop();
  }
  const rows = [
    { name: 'E2B SDK: Sandbox.create + first commands.run (warm pool)', summary: summarize(e2b) },
    { name: 'sandpool SDK: Sandbox.create + first exec (warm pool)', summary: summarize(native) },
  ];
  for (const row of rows) step(`  ${row.name}: median ${row.summary.median_ms} ms`);
  const e2bMedian = rows[0]?.summary.median_ms ?? 0;
  const nativeMedian = rows[1]?.summary.median_ms ?? 1;
  return { rows, e2b_over_sandpool: Math.round((e2bMedian / nativeMedian) * 100) / 100 };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await e2bBench(Math.random().toString(16).slice(2, 10), (line) =>
    process.stderr.write(`${line}\n`),
  );
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

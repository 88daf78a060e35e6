// The code interpreter's figures (issue 11, item 9): the first cell of a fresh session on a warm
// code-interpreter pool, a following cell, a cell that returns a matplotlib PNG, and the idle
// memory of a pooled code-interpreter sandbox. Called by run-bench.ts; also runs alone:
//   node --import tsx bench/code-interpreter-bench.ts
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { BenchWorker } from './bench-worker.js';
import { summarize, type Summary } from './stats.js';

const run = promisify(execFile);
const CONTEXT = fileURLToPath(new URL('../images/templates/code-interpreter/', import.meta.url));
const POOL_SIZE = 3;
const ROUNDS = 4;

export interface CodeBenchRow {
  name: string;
  summary: Summary;
}

export interface CodeBenchResult {
  image: string;
  rows: CodeBenchRow[];
  idleMemoryMiB: number[];
  targets: { target: string; value: number; pass: boolean }[];
}

/**
 * The code-interpreter image: `SANDPOOL_CODE_IMAGE`, else built from
 * images/templates/code-interpreter on top of `SANDPOOL_IMAGE` (cached layers: seconds).
 */
async function codeImage(): Promise<string> {
  const given = process.env.SANDPOOL_CODE_IMAGE;
  if (given !== undefined && given !== '') return given;
  const base = process.env.SANDPOOL_IMAGE ?? 'sandpool/sandbox:latest';
  const tag = 'sandpool/sandbox:code-interpreter-bench';
  await run('docker', ['build', '-q', '--build-arg', `BASE_IMAGE=${base}`, '-t', tag, CONTEXT], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return tag;
}

/** The worker's containers; called only while no session is open, so they are the pool. */
async function pooledContainers(workerId: string): Promise<string[]> {
  const { stdout } = await run('docker', [
    'ps',
    '-q',
    '--no-trunc',
    '--filter',
    `label=sandpool.worker=${workerId}`,
  ]);
  return stdout.split('\n').filter(Boolean);
}

/** Waits until every pooled sandbox's kernel bridge says its default kernel is up. */
async function waitForKernels(workerId: string): Promise<void> {
  const ping = `printf '{"op":"ping"}' | socat -t 5 - UNIX-CONNECT:/tmp/.sandpool/kernel.sock`;
  for (let attempt = 0; attempt < 600; attempt++) {
    const ids = await pooledContainers(workerId);
    const ready = await Promise.all(
      ids.map(async (id) => {
        const answer = await run('docker', ['exec', id, 'sh', '-c', ping]).catch(() => undefined);
        return answer?.stdout.includes('"ready":true') ?? false;
      }),
    );
    if (ids.length >= POOL_SIZE && ready.every(Boolean)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('the pooled kernels did not come up within 5 minutes');
}

async function memoryMiB(id: string): Promise<number> {
  const bytes = await readFile(
    `/sys/fs/cgroup/memory/docker/${id}/memory.usage_in_bytes`,
    'utf8',
  ).catch(() => undefined);
  if (bytes !== undefined) return Math.round((Number(bytes) / 1024 / 1024) * 10) / 10;
  const { stdout } = await run('docker', ['stats', '--no-stream', '--format', '{{.MemUsage}}', id]);
  const [amount = '0', unit = 'MiB'] = /([\d.]+)\s*([KMG]i?B)/.exec(stdout)?.slice(1) ?? [];
  const scale: Record<string, number> = { KiB: 1 / 1024, MiB: 1, GiB: 1024 };
  return Math.round(Number(amount) * (scale[unit] ?? 1) * 10) / 10;
}

async function cell(
  worker: BenchWorker,
  session: string,
  code: string,
): Promise<Record<string, unknown>> {
  const res = await worker.call('POST', `/v1/sessions/${session}/code`, {
    code,
    timeout_ms: 120_000,
  });
  if (res.status !== 200 || res.body.error !== undefined) {
    throw new Error(`code: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  }
  return res.body;
}

/** A port nothing listens on now (a fixed one may be another bench's, on a shared machine). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

export async function codeInterpreterBench(
  runId: string,
  log: (line: string) => void,
): Promise<CodeBenchResult> {
  const image = await codeImage();
  const workerId = `bench-${runId}-code`;
  log(`code interpreter: worker with a warm pool of ${POOL_SIZE} (${image})`);
  const port = await freePort();
  const worker = await BenchWorker.start({
    port,
    workerId,
    poolSize: POOL_SIZE,
    maxSessions: 40,
    image,
  });
  const health = await worker.call('GET', '/health');
  if (health.body.worker_id !== workerId) {
    await worker.stop();
    throw new Error(`port ${port} answers as ${String(health.body.worker_id)}, not ${workerId}`);
  }
  const rows: CodeBenchRow[] = [];
  const record = (name: string, samples: number[]) => {
    const row = { name, summary: summarize(samples) };
    rows.push(row);
    log(`  ${name}: median ${row.summary.median_ms} ms`);
    return row;
  };
  try {
    await waitForKernels(workerId);
    const idle = await Promise.all((await pooledContainers(workerId)).map(memoryMiB));

    // A fresh session each time: the hand-over from the pool plus the cell, as a client sees it.
    const firstCell: number[] = [];
    const createAndFirst: number[] = [];
    const sessions: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < POOL_SIZE; i++) {
        const t0 = performance.now();
        const session = await worker.createSession();
        const t1 = performance.now();
        const answer = await cell(worker, session, '1+1');
        const t2 = performance.now();
        if ((answer.results as { text?: string }[])[0]?.text !== '2') {
          throw new Error(`1+1 gave ${JSON.stringify(answer)}`);
        }
        firstCell.push(t2 - t1);
        createAndFirst.push(t2 - t0);
        sessions.push(session);
      }
      for (const s of sessions.splice(0)) await worker.deleteSession(s);
      await worker.waitForPool();
      await waitForKernels(workerId);
    }
    const first = record('code: first cell `1+1` of a fresh session (HTTP)', firstCell);
    const handover = record('code: create session + first cell `1+1` (HTTP)', createAndFirst);

    const session = await worker.createSession();
    for (let i = 0; i < 5; i++) await cell(worker, session, '1+1');
    const following: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      await cell(worker, session, 'x = 1\nx + 1');
      following.push(performance.now() - t);
    }
    const next = record('code: a following cell `x + 1` (HTTP)', following);

    const plot =
      'import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot(range(100), [i * i for i in range(100)])\nplt.show()';
    const t = performance.now();
    const firstPlot = await cell(worker, session, plot);
    const firstPlotMs = performance.now() - t;
    if (!(firstPlot.results as { png?: string }[]).some((r) => r.png !== undefined)) {
      throw new Error('the plot cell returned no PNG');
    }
    record('code: first matplotlib PNG cell (imports matplotlib)', [firstPlotMs]);
    const plots: number[] = [];
    for (let i = 0; i < 10; i++) {
      const s = performance.now();
      await cell(worker, session, plot);
      plots.push(performance.now() - s);
    }
    record('code: a matplotlib PNG cell, matplotlib imported', plots);
    await worker.deleteSession(session);

    const idleMax = Math.max(...idle);
    log(`  idle memory of a pooled code-interpreter sandbox: ${idle.join(', ')} MiB`);
    return {
      image,
      rows,
      idleMemoryMiB: idle,
      targets: [
        {
          target: 'code: first cell of a fresh session, median ≤ 50 ms',
          value: handover.summary.median_ms,
          pass: handover.summary.median_ms <= 50,
        },
        {
          target: 'code: a following cell, median ≤ 10 ms',
          value: next.summary.median_ms,
          pass: next.summary.median_ms <= 10,
        },
        {
          target: 'code: the first cell alone (session already created), median',
          value: first.summary.median_ms,
          pass: first.summary.median_ms <= 50,
        },
        {
          target: 'code: idle memory of a pooled code-interpreter sandbox (MiB, max; no target)',
          value: idleMax,
          pass: true,
        },
      ],
    };
  } finally {
    await worker.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await codeInterpreterBench(Math.random().toString(16).slice(2, 10), (l) =>
    process.stderr.write(`${l}\n`),
  );
  for (const row of result.rows) {
    const s = row.summary;
    process.stdout.write(
      `${row.name.padEnd(58)} n=${String(s.count).padStart(3)} median ${s.median_ms} ms  p90 ${s.p90_ms} ms  p99 ${s.p99_ms} ms\n`,
    );
  }
  process.stdout.write(`idle memory (MiB): ${result.idleMemoryMiB.join(', ')}\n`);
  for (const t of result.targets) {
    process.stdout.write(`  [${t.pass ? 'met' : 'MISSED'}] ${t.target}: ${t.value}\n`);
  }
}

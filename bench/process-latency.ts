// Issue 12's two latencies, against a worker and through a coordinator (separate processes):
// - attach: from asking for a running process's output to its first replayed byte;
// - keystroke: a byte sent on the terminal's WebSocket until its echo comes back (a PTY running
//   `cat`, so the echo is the terminal's own).
//   node --import tsx bench/process-latency.ts [samples]
// Needs redis-server, the Docker engine and the sandbox image (SANDPOOL_IMAGE to pick one).
import { WebSocket } from 'ws';
import { startBenchCluster } from './bench-cluster.js';
import { summarize, type Summary } from './stats.js';

const COUNT = Number(process.argv[2] ?? 200);
const WARM_UP = 20;

async function json<T>(url: string, method: string, body?: unknown): Promise<T> {
  const answer = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (answer.status >= 300)
    throw new Error(`${method} ${url}: ${answer.status} ${await answer.text()}`);
  return (await answer.json()) as T;
}

/** Milliseconds from the request to the first output line after `start`. */
async function attachOnce(url: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(url);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error('the stream ended');
    text += decoder.decode(value, { stream: true });
    if (text.includes('"type":"stdout"')) break;
  }
  const elapsed = performance.now() - started;
  await reader.cancel();
  return elapsed;
}

async function attach(base: string, sessionPath: string, pid: number): Promise<Summary> {
  const samples: number[] = [];
  for (let i = 0; i < COUNT + WARM_UP; i++) {
    const ms = await attachOnce(`${base}${sessionPath}/processes/${pid}/output`);
    if (i >= WARM_UP) samples.push(ms);
  }
  return summarize(samples);
}

async function keystrokes(base: string, sessionPath: string, pid: number): Promise<Summary> {
  const socket = new WebSocket(`${base.replace(/^http/, 'ws')}${sessionPath}/processes/${pid}/pty`);
  socket.binaryType = 'nodebuffer';
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let waiting: ((data: Buffer) => void) | undefined;
  socket.on('message', (data: Buffer, binary: boolean) => {
    if (binary) waiting?.(data);
  });
  await new Promise((r) => setTimeout(r, 300)); // the replayed screen, if any, goes by
  const samples: number[] = [];
  for (let i = 0; i < COUNT + WARM_UP; i++) {
    const key = String.fromCharCode(97 + (i % 26));
    const echoed = new Promise<void>((resolve) => {
      waiting = (data) => {
        if (data.toString().includes(key)) resolve();
      };
    });
    const started = performance.now();
    socket.send(Buffer.from(key), { binary: true });
    await echoed;
    if (i >= WARM_UP) samples.push(performance.now() - started);
  }
  socket.close();
  return summarize(samples);
}

const { worker, coordinator, sessionPath: path, stop } = await startBenchCluster('proc');
try {
  const logger = await json<{ pid: number }>(`${worker.url}${path}/processes`, 'POST', {
    command: 'seq 1 1000; sleep 3600',
  });
  const terminal = await json<{ pid: number }>(`${worker.url}${path}/processes`, 'POST', {
    argv: ['cat'],
    pty: { cols: 80, rows: 24 },
  });
  await new Promise((r) => setTimeout(r, 500));
  process.stdout.write(`${COUNT} samples each, one at a time (median / p90 / p99, ms)\n`);
  for (const [name, base] of [
    ['worker', worker.url],
    ['coordinator', coordinator.url],
  ] as const) {
    const a = await attach(base, path, logger.pid);
    const k = await keystrokes(base, path, terminal.pid);
    process.stdout.write(
      `${name.padEnd(11)}  attach to output, first replayed byte ${a.median_ms} / ${a.p90_ms} / ${a.p99_ms}` +
        `   PTY keystroke round trip ${k.median_ms} / ${k.p90_ms} / ${k.p99_ms}\n`,
    );
  }
  await fetch(`${coordinator.url}${path}`, { method: 'DELETE' });
} finally {
  await stop();
}

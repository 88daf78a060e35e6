// The coordinator's added latency: the same requests sent to a worker directly and through a
// coordinator (Redis lookup + proxy hop), measured in one run on this machine.
//   node --import tsx bench/coordinator-latency.ts [requests]
// Needs redis-server, the Docker engine and the sandbox image. Target (issue 5): the median
// added per request is at most 1 ms. Worker and coordinator run as their own processes.
import { Agent, request } from 'node:http';
import { startBenchCluster } from './bench-cluster.js';
import { summarize, type Summary } from './stats.js';

const COUNT = Number(process.argv[2] ?? 500);
const WARM_UP = 50;
const TARGET_ADDED_MS = 1;
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** One request over a kept-alive connection; resolves when the whole answer has arrived. */
function send(url: string, method: string, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json' };
    const started = performance.now();
    const call = request(url, { method, agent, headers }, (response) => {
      response.resume();
      response.once('end', () => {
        if ((response.statusCode ?? 500) >= 400)
          reject(new Error(`${url}: ${response.statusCode}`));
        else resolve(performance.now() - started);
      });
    });
    call.once('error', reject);
    call.end(body);
  });
}

/** Direct and routed requests alternate, so a change in the machine's load hits both alike. */
async function measure(
  direct: string,
  routed: string,
  method: string,
  body?: string,
): Promise<[Summary, Summary]> {
  const samples: [number[], number[]] = [[], []];
  for (let i = 0; i < COUNT + WARM_UP; i++) {
    const a = await send(direct, method, body);
    const b = await send(routed, method, body);
    if (i >= WARM_UP) {
      samples[0].push(a);
      samples[1].push(b);
    }
  }
  return [summarize(samples[0]), summarize(samples[1])];
}

const { worker, coordinator, sessionPath: path, stop } = await startBenchCluster('coord');
try {
  const exec = JSON.stringify({ command: 'true' });
  const cases: [string, string, string, string?][] = [
    ['GET session', 'GET', path],
    ['exec `true`', 'POST', `${path}/exec`, exec],
  ];
  process.stdout.write(`${COUNT} requests each, one at a time (median / p90 / p99, ms)\n`);
  let worst = 0;
  for (const [name, method, route, body] of cases) {
    const [direct, routed] = await measure(
      `${worker.url}${route}`,
      `${coordinator.url}${route}`,
      method,
      body,
    );
    const added = Math.round((routed.median_ms - direct.median_ms) * 100) / 100;
    worst = Math.max(worst, added);
    process.stdout.write(
      `${name.padEnd(12)} direct ${direct.median_ms} / ${direct.p90_ms} / ${direct.p99_ms}` +
        `   via coordinator ${routed.median_ms} / ${routed.p90_ms} / ${routed.p99_ms}` +
        `   added median ${added}\n`,
    );
  }
  process.stdout.write(
    `coordinator adds ${worst} ms at the median (target ≤ ${TARGET_ADDED_MS} ms): ${worst <= TARGET_ADDED_MS ? 'met' : 'NOT met'}\n`,
  );
  await fetch(`${coordinator.url}${path}`, { method: 'DELETE' });
} finally {
  agent.destroy();
  await stop();
}

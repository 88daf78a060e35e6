// The egress proxy's cost: added latency of one HTTPS request (a fresh curl: CONNECT + TLS
// handshake + GET) and throughput of a large download, through a session's proxy against a direct
// connection from the same image on the host network, to the netns test hosts (root needed).
//   node --import tsx bench/egress-bench.ts [requests=30] [megabytes=256] [cpus]
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { summarize } from './stats.js';
import { egressTestImage, HOSTS, DNS_SERVER, startWorld } from '../test/egress/egress-world.js';
import { startWorker } from '../test/support/worker-harness.js';
import { createSession, exec } from '../test/support/http.js';

const run = promisify(execFile);
const requests = Number(process.argv[2] ?? 30);
const megabytes = Number(process.argv[3] ?? 256);
/** CPUs of the sandbox (and of the direct baseline); the worker's default when not given. */
const cpus = process.argv[4] === undefined ? undefined : Number(process.argv[4]);

const image = await egressTestImage();
const world = await startWorld();
const worker = await startWorker({
  image,
  poolSize: 1,
  egressAllowMax: '*.test:*',
  egressDnsServers: DNS_SERVER,
  egressTrustFile: world.caFile,
  egressBytesPerSecond: 0,
  ...(cpus === undefined ? {} : { cpus }),
});

const latencyLoop = (extra: string) =>
  `for i in $(seq ${requests}); do curl -sS ${extra} -o /dev/null -w '%{time_total}\\n' https://pypi.test/small; done`;
const downloadLoop = (extra: string) =>
  `for i in 1 2 3; do curl -sS ${extra} -o /dev/null -w '%{speed_download}\\n' 'https://pypi.test/big?bytes=${megabytes * 1024 * 1024}'; done`;
const numbers = (text: string) => text.trim().split('\n').map(Number);
const median = (samples: number[]) => summarize(samples).median_ms;

/** Milliseconds of one POST /v1/sessions, then the session is closed again. */
const timedCreate = async (body: Record<string, unknown>) => {
  const t0 = performance.now();
  const id = await createSession(worker.url, body);
  const ms = performance.now() - t0;
  await fetch(`${worker.url}/v1/sessions/${id}`, { method: 'DELETE' });
  return ms;
};

try {
  // A pooled session against one started on its own network behind its own proxy.
  const pooledMs: number[] = [];
  const networkMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    pooledMs.push(await timedCreate({}));
    await new Promise((r) => setTimeout(r, 1500)); // let the pool refill
    networkMs.push(await timedCreate({ network: { allow_out: ['pypi.test'] } }));
  }
  const id = await createSession(worker.url, { network: { allow_out: ['pypi.test'] } });
  const proxied = async (command: string) => {
    const r = await exec(worker.url, id, { command, timeout_ms: 600_000 });
    if (r.exit_code !== 0) throw new Error(r.stderr);
    return numbers(r.stdout);
  };
  const direct = async (command: string) => {
    const { stdout } = await run(
      'docker',
      [
        'run',
        '--rm',
        // The sandbox's own CPU and memory limits, so only the network path differs.
        '--cpus',
        String(worker.worker.config.cpus),
        '--memory',
        `${worker.worker.config.memoryMb}m`,
        '--network',
        'host',
        '-v',
        `${world.caFile}:/ca.pem:ro`,
        image,
        'sh',
        '-c',
        command,
      ],
      { maxBuffer: 1024 * 1024 },
    );
    return numbers(stdout);
  };
  // The same trust store as the sandbox's (system roots + the test CA): loading it is part of
  // every curl's cost, and not the proxy's.
  const bundle = 'cat /etc/ssl/certs/ca-certificates.crt /ca.pem > /tmp/bundle.pem; ';
  const resolve = `--cacert /tmp/bundle.pem --resolve pypi.test:443:${HOSTS['pypi.test']}`;
  const viaProxyMs = median((await proxied(latencyLoop(''))).map((s) => s * 1000));
  const directMs = median((await direct(bundle + latencyLoop(resolve))).map((s) => s * 1000));
  const viaProxyMBs = median(await proxied(downloadLoop(''))) / 1024 / 1024;
  const directMBs = median(await direct(bundle + downloadLoop(resolve))) / 1024 / 1024;
  console.log(
    JSON.stringify(
      {
        requests,
        session_create_ms: {
          pooled: +median(pooledMs).toFixed(1),
          with_network: +median(networkMs).toFixed(1),
        },
        https_request_ms: {
          direct: +directMs.toFixed(1),
          via_proxy: +viaProxyMs.toFixed(1),
          added: +(viaProxyMs - directMs).toFixed(1),
        },
        download_mib_per_s: {
          megabytes,
          direct: +directMBs.toFixed(0),
          via_proxy: +viaProxyMBs.toFixed(0),
        },
      },
      null,
      2,
    ),
  );
} finally {
  await worker.close();
  await world.stop();
}

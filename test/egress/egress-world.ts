import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  certificatePem,
  generateCa,
  issueLeaf,
} from '../../packages/server/src/network/worker-ca.js';
import type { WorldConfig } from './world-server.js';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** The test hosts: name → address in the test namespace (scripts/egress-test-hosts.sh). */
export const HOSTS = {
  'pypi.test': '198.18.14.10',
  'allowed.test': '198.18.14.11',
  'denied.test': '198.18.14.12',
  'neighbour.test': '198.18.14.13',
} as const;
export const DNS_SERVER = '198.18.14.53';
/** A name the DNS view points at the cloud-metadata address (nothing there is ever contacted). */
export const METADATA_NAME = 'metadata.test';
export const WHEEL_PROJECT = 'sandpool-demo';

export interface World {
  /** PEM of the CA that signed every test host's certificate. */
  caPem: string;
  caFile: string;
  dir: string;
  /** Every JSON line the hosts printed: requests that reached them and DNS queries. */
  lines: Record<string, unknown>[];
  stop(): Promise<void>;
}

/** Why the world cannot be built here (not root, no iproute2), or `undefined` when it can. */
export async function worldUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  try {
    await run('ip', ['netns', 'list']);
    await run('iptables', ['-w', '-S', 'INPUT']);
  } catch (error) {
    return `needs iproute2 and iptables (${(error as Error).message.split('\n')[0]})`;
  }
  return undefined;
}

/** A tiny pure-Python wheel, built with the host's python3 (zipfile). */
async function buildWheel(dir: string): Promise<{ file: string; name: string; sha256: string }> {
  const name = 'sandpool_demo-1.0-py3-none-any.whl';
  const file = join(dir, name);
  const script = `
import base64, hashlib, sys, zipfile
files = {
  "sandpool_demo/__init__.py": "MESSAGE = 'installed through the egress proxy'\\n",
  "sandpool_demo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\\nName: sandpool-demo\\nVersion: 1.0\\n",
  "sandpool_demo-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: sandpool-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
with zipfile.ZipFile(sys.argv[1], "w") as z:
  for path, text in files.items():
    data = text.encode()
    z.writestr(path, data)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(data)}")
  record.append("sandpool_demo-1.0.dist-info/RECORD,,")
  z.writestr("sandpool_demo-1.0.dist-info/RECORD", "\\n".join(record) + "\\n")
`;
  await run('python3', ['-c', script, file]);
  return { file, name, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
}

/** Builds (once per base image) the sandbox image with pip, git, curl and node for these tests. */
export async function egressTestImage(): Promise<string> {
  const base = process.env.SANDPOOL_IMAGE ?? 'sandpool/sandbox:latest';
  const { stdout } = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', base]);
  const tag = `sandpool/egress-test:${stdout
    .trim()
    .replace(/^sha256:/, '')
    .slice(0, 12)}`;
  const present = await run('docker', ['image', 'inspect', tag]).then(
    () => true,
    () => false,
  );
  if (!present) {
    await run(
      'docker',
      ['build', '-q', '--build-arg', `BASE=${base}`, '-t', tag, join(root, 'test/egress/image')],
      {
        maxBuffer: 16 * 1024 * 1024,
      },
    );
  }
  return tag;
}

/** Creates the namespace, the CA, the certificates and the wheel, and starts the hosts. */
export async function startWorld(): Promise<World> {
  await run('bash', [join(root, 'scripts/egress-test-hosts.sh'), 'up']);
  const dir = mkdtempSync(join(tmpdir(), 'sandpool-egress-'));
  const ca = await generateCa('sandpool egress test CA');
  const leafKeys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const leafKey = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${leafKey
    .toString('base64')
    .match(/.{1,64}/g)
    ?.join('\n')}\n-----END PRIVATE KEY-----\n`;
  const hosts: WorldConfig['hosts'] = [];
  for (const [name, address] of Object.entries(HOSTS)) {
    const cert = await issueLeaf(name, ca.cert, ca.keys, leafKeys);
    hosts.push({ name, address, cert: certificatePem(cert), key: keyPem });
  }
  const caPem = certificatePem(ca.cert);
  const caFile = join(dir, 'test-ca.pem');
  writeFileSync(caFile, caPem);
  const wheel = await buildWheel(dir);
  const config: WorldConfig = {
    hosts,
    dns: {
      address: DNS_SERVER,
      records: { ...HOSTS, [METADATA_NAME]: '169.254.169.254' },
    },
    wheel: { ...wheel, project: WHEEL_PROJECT },
  };
  const configFile = join(dir, 'world.json');
  writeFileSync(configFile, JSON.stringify(config));
  const child: ChildProcess = spawn(
    'ip',
    [
      'netns',
      'exec',
      'sp-egress-world',
      process.execPath,
      '--import',
      'tsx',
      join(root, 'test/egress/world-server.ts'),
      readFileSync(configFile, 'utf8'),
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: Record<string, unknown>[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the world server exited (${code}): ${stderr}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>;
        buffered = buffered.slice(newline + 1);
        if (line.kind === 'ready') resolve();
        else lines.push(line);
      }
    });
  });
  await ready;
  return {
    caPem,
    caFile,
    dir,
    lines,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      await run('bash', [join(root, 'scripts/egress-test-hosts.sh'), 'down']);
    },
  };
}

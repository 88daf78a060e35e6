import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CONTEXT = new URL('../../images/templates/code-interpreter/', import.meta.url).pathname;

/**
 * The code-interpreter image the tests run: `SANDPOOL_CODE_IMAGE` when set, else built here from
 * images/templates/code-interpreter on top of `SANDPOOL_IMAGE` (the layer cache makes a rebuild
 * take a second; the first build installs Debian's packages and takes minutes).
 */
export async function codeInterpreterImage(): Promise<string> {
  const given = process.env.SANDPOOL_CODE_IMAGE;
  if (given !== undefined && given !== '') return given;
  const base = process.env.SANDPOOL_IMAGE ?? 'sandpool/sandbox:latest';
  const tag = `${base.replace(/:.*$/, '')}:${(base.split(':')[1] ?? 'latest').replace(/[^\w.-]/g, '')}-code-test`;
  await run('docker', ['build', '-q', '--build-arg', `BASE_IMAGE=${base}`, '-t', tag, CONTEXT], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return tag;
}

/** Width and height of a base64 PNG, after checking its signature and IHDR chunk. */
export function pngSize(base64: string): { width: number; height: number } {
  const bytes = Buffer.from(base64, 'base64');
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (!bytes.subarray(0, 8).equals(signature)) throw new Error('not a PNG: bad signature');
  if (bytes.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG: no IHDR first');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

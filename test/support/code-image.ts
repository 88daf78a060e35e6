import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLI = new URL('../../packages/server/dist/cli/main.js', import.meta.url).pathname;

/** What `sandpool template build code-interpreter` (run by scripts/provision.sh) tags. */
const TEMPLATE_IMAGE = 'sandpool/template-code-interpreter:latest';

/**
 * The code-interpreter image the tests run: `SANDPOOL_CODE_IMAGE` when set, else the shipped
 * template's image, checked to exist (provisioning builds it), then built from
 * images/templates/code-interpreter on top of the foundation if it is missing.
 */
export async function codeInterpreterImage(): Promise<string> {
  const given = process.env.SANDPOOL_CODE_IMAGE;
  if (given !== undefined && given !== '') return given;
  try {
    await run('docker', ['image', 'inspect', TEMPLATE_IMAGE]);
  } catch {
    await run(process.execPath, [CLI, 'template', 'build', 'code-interpreter'], {
      maxBuffer: 16 * 1024 * 1024,
    });
  }
  return TEMPLATE_IMAGE;
}

/** Width and height of a base64 PNG, after checking its signature and IHDR chunk. */
export function pngSize(base64: string): { width: number; height: number } {
  const bytes = Buffer.from(base64, 'base64');
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (!bytes.subarray(0, 8).equals(signature)) throw new Error('not a PNG: bad signature');
  if (bytes.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG: no IHDR first');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

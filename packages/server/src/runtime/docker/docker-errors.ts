import { SandpoolError } from '../../errors/sandpool-error.js';

interface DockerishError {
  statusCode?: number;
  code?: string;
  message?: string;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
]);

/** True when the engine itself did not answer (socket missing, refused, reset). */
export function isEngineUnreachable(error: unknown): boolean {
  const e = error as DockerishError;
  return e?.code !== undefined && UNREACHABLE_CODES.has(e.code) && e.statusCode === undefined;
}

/** True when the engine answered that the container does not exist or does not run. */
export function isContainerGone(error: unknown): boolean {
  const e = error as DockerishError;
  return (
    e?.statusCode === 404 ||
    (e?.statusCode === 409 && /not running|is paused|being removed/i.test(e.message ?? ''))
  );
}

/** Maps an engine failure to the public error it means. */
export function translateDockerError(error: unknown, doing: string): SandpoolError {
  if (error instanceof SandpoolError) return error;
  if (isEngineUnreachable(error)) {
    return new SandpoolError(
      'runtime_unavailable',
      `The Docker engine did not answer while ${doing}; check that dockerd runs (scripts/provision.sh starts it) and retry.`,
      5,
      { cause: error },
    );
  }
  if (isContainerGone(error)) {
    return new SandpoolError(
      'session_lost',
      `The sandbox's container is gone (${doing}); create a new session.`,
      undefined,
      { cause: error },
    );
  }
  const message = (error as DockerishError)?.message ?? String(error);
  return new SandpoolError(
    'runtime_unavailable',
    `The Docker engine failed while ${doing}: ${message.trim()}`,
    5,
    { cause: error },
  );
}

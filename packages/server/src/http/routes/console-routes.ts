import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { SandpoolError } from '../../errors/sandpool-error.js';

/** Where the console's page lives on every worker and coordinator. */
export const CONSOLE_PREFIX = '/ui';

/** The console's own files are public (the page asks for the key); what it calls is not. */
export function isConsoleRoute(url: string): boolean {
  return url === CONSOLE_PREFIX || url.startsWith(`${CONSOLE_PREFIX}/`);
}

/** The bundle `npm run build` writes (packages/console/dist), or undefined when not built. */
export function consoleAssetsDir(): string | undefined {
  try {
    const manifest = createRequire(import.meta.url).resolve('@sandpool/console/package.json');
    const dir = join(dirname(manifest), 'dist');
    return existsSync(join(dir, 'index.html')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** The page is no API: it stays out of /openapi.json. */
const hidden = { schema: { hide: true } };

const LOOPBACK_ADDRESSES = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * What a browser may do with the page: load only this server's scripts and styles, talk only to
 * this server, show images the API returns (data: URLs), and never be framed by another site.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/**
 * Serves the operator console at `/ui/`. Without an API key the server trusts whoever can reach
 * it, so the page is then served to this machine only (a browser on another machine gets a 403
 * that says how to open it up).
 */
export const consoleRoutes: FastifyPluginAsync<{
  apiKey: string | undefined;
  /** {@link consoleAssetsDir}; undefined when the console is not built. */
  assetsDir: string | undefined;
}> = async (app, { apiKey, assetsDir }) => {
  app.addHook('onRequest', async (request) => {
    if (apiKey === undefined && !LOOPBACK_ADDRESSES.has(request.socket.remoteAddress ?? '')) {
      throw new SandpoolError(
        'forbidden_origin',
        'Without an API key the console is served to this machine only: open it on the server as http://localhost:<port>/ui/, or start the server with --api-key (SANDPOOL_API_KEY) to open it to the network.',
      );
    }
  });
  if (assetsDir === undefined) {
    const notBuilt = async () => {
      throw new SandpoolError(
        'file_not_found',
        'The console is not built: run `npm run build` (it bundles packages/console into packages/console/dist) and restart the server.',
      );
    };
    app.get(CONSOLE_PREFIX, hidden, notBuilt);
    app.get(`${CONSOLE_PREFIX}/*`, hidden, notBuilt);
    return;
  }
  app.get(CONSOLE_PREFIX, hidden, async (_request, reply) => reply.redirect(`${CONSOLE_PREFIX}/`));
  await app.register(fastifyStatic, {
    root: assetsDir,
    prefix: `${CONSOLE_PREFIX}/`,
    index: 'index.html',
    decorateReply: false,
    redirect: false,
    setHeaders: (reply) => {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.header(name, value);
    },
  });
};

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { SandpoolError } from '../errors/sandpool-error.js';
import { abortOnDisconnect } from '../http/client-disconnect.js';
import { installJsonBodies } from '../http/json-bodies.js';
import { EnvSchema, MetadataSchema, type CreateSessionBody } from '../http/schemas.js';
import type { E2bControlBackend } from './e2b-control-backend.js';
import { installE2bErrors } from './e2b-errors.js';
import {
  DEFAULT_TIMEOUT_SECONDS,
  domainFor,
  e2bSandboxOf,
  sandpoolTemplateOf,
  type E2bSandboxDetail,
} from './e2b-sandbox-view.js';
import { secretMatches } from './secret-match.js';

export interface ControlPlaneOptions {
  backend: E2bControlBackend;
  /** sandpool's API key; E2B's SDK sends it as `X-API-KEY`. Unset: any key is accepted. */
  apiKey: string | undefined;
  /** The preview domain (`--preview-domain`): `getHost(port)` names `{port}-{id}.{domain}`. */
  previewDomain: string;
}

const Timeout = Type.Integer({ minimum: 0, maximum: 2_147_483_647 });
const Names = Type.Array(Type.String({ minLength: 1, maxLength: 300 }), { maxItems: 256 });

/** E2B's `NewSandbox`, every field the SDK sends; those sandpool cannot honour are refused below. */
const NewSandbox = Type.Object(
  {
    templateID: Type.String({ minLength: 1, maxLength: 256 }),
    timeout: Type.Optional(Timeout),
    metadata: Type.Optional(MetadataSchema),
    envVars: Type.Optional(EnvSchema),
    allow_internet_access: Type.Optional(Type.Boolean()),
    network: Type.Optional(
      Type.Object(
        {
          allowOut: Type.Optional(Names),
          denyOut: Type.Optional(Names),
          allowPublicTraffic: Type.Optional(Type.Boolean()),
          maskRequestHost: Type.Optional(Type.Unknown()),
          egressProxy: Type.Optional(Type.Unknown()),
          rules: Type.Optional(Type.Unknown()),
          httpsPorts: Type.Optional(Type.Unknown()),
        },
        { additionalProperties: false },
      ),
    ),
    secure: Type.Optional(Type.Boolean()),
    autoPause: Type.Optional(Type.Boolean()),
    autoPauseMemory: Type.Optional(Type.Boolean()),
    autoResume: Type.Optional(Type.Unknown()),
    mcp: Type.Optional(Type.Unknown()),
    iam: Type.Optional(Type.Unknown()),
    volumeMounts: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
);
export type NewSandbox = Static<typeof NewSandbox>;

const SandboxParams = Type.Object({ sandboxID: Type.String({ minLength: 1, maxLength: 128 }) });
const TimeoutBody = Type.Object({ timeout: Timeout }, { additionalProperties: false });
const ConnectBody = Type.Object(
  { timeout: Type.Optional(Timeout), memory: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
const ListQuery = Type.Object(
  {
    metadata: Type.Optional(Type.String({ maxLength: 8192 })),
    state: Type.Optional(Type.String({ maxLength: 64 })),
    startedAfter: Type.Optional(Type.String({ maxLength: 64 })),
    template: Type.Optional(Type.String({ maxLength: 256 })),
    order: Type.Optional(Type.String({ maxLength: 16 })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
    nextToken: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);
const PauseBody = Type.Optional(
  Type.Object({ memory: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
);

/** E2B's page size when a list names none, and its largest. */
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

/**
 * E2B's control plane (the REST API the SDK calls through `E2B_API_URL`), translated to sandpool's
 * sessions: create, get, list with filters and paging, kill, set timeout, connect. Pause and
 * snapshots are refused: a sandpool sandbox cannot be put away and brought back.
 */
export const controlPlaneRoutes: FastifyPluginAsyncTypebox<ControlPlaneOptions> = async (
  app,
  { backend, apiKey, previewDomain },
) => {
  installE2bErrors(app, 'control');
  // JSON bodies (a coordinator leaves bodies unparsed for the routes it only forwards).
  installJsonBodies(app);
  app.addHook('onRequest', async (request) => {
    if (apiKey === undefined) return;
    const header = request.headers['x-api-key'];
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const given = typeof header === 'string' ? header : bearer;
    if (!secretMatches(given, apiKey)) {
      throw new SandpoolError(
        'unauthorized',
        'Missing or wrong API key: set E2B_API_KEY to the sandpool API key (SANDPOOL_API_KEY); the SDK sends it as X-API-KEY.',
      );
    }
  });

  const reachOf = (request: FastifyRequest) => ({
    domain: domainFor(previewDomain, request.headers.host),
  });

  for (const url of ['/v2/sandboxes', '/sandboxes']) {
    app.post(url, { schema: { body: NewSandbox } }, async (request, reply) => {
      const input = createInputOf(request.body);
      const view = await backend.create(input, abortOnDisconnect(reply));
      if (reply.raw.destroyed) return reply.hijack();
      return reply.code(201).send(e2bSandboxOf(view, reachOf(request)));
    });
  }

  app.get('/sandboxes/:sandboxID', { schema: { params: SandboxParams } }, async (request) =>
    backend.detail(request.params.sandboxID, reachOf(request)),
  );

  for (const url of ['/v2/sandboxes', '/sandboxes']) {
    app.get(url, { schema: { querystring: ListQuery } }, async (request, reply) => {
      const { metadata, state, template, startedAfter } = request.query;
      const all = await backend.details(
        { metadata, state, template, startedAfter },
        reachOf(request),
      );
      const page = listPage(all, request.query);
      if (page.nextToken !== undefined) reply.header('x-next-token', page.nextToken);
      return page.items;
    });
  }

  app.delete(
    '/sandboxes/:sandboxID',
    { schema: { params: SandboxParams } },
    async (request, reply) => {
      await backend.delete(request.params.sandboxID);
      return reply.code(204).send();
    },
  );

  app.post(
    '/sandboxes/:sandboxID/timeout',
    { schema: { params: SandboxParams, body: TimeoutBody } },
    async (request, reply) => {
      await backend.keepAlive(request.params.sandboxID, Math.max(1, request.body.timeout));
      return reply.code(204).send();
    },
  );

  for (const url of ['/v2/sandboxes/:sandboxID/connect', '/sandboxes/:sandboxID/resume']) {
    app.post(
      url,
      { schema: { params: SandboxParams, body: Type.Optional(ConnectBody) } },
      async (request) => {
        const id = request.params.sandboxID;
        let view = await backend.get(id);
        const timeout = request.body?.timeout;
        // Connecting keeps the sandbox alive for at least `timeout` more seconds, never shorter.
        if (timeout !== undefined && Date.now() + timeout * 1000 > Date.parse(view.expires_at)) {
          view = await backend.keepAlive(id, Math.max(1, timeout));
        }
        return e2bSandboxOf(view, reachOf(request));
      },
    );
  }

  app.post(
    '/sandboxes/:sandboxID/pause',
    { schema: { params: SandboxParams, body: PauseBody } },
    async (request) => {
      await backend.get(request.params.sandboxID);
      throw notSupported(
        'Pausing',
        'a sandpool sandbox is a container that holds its memory and a pool slot until it ends, so it cannot be put away and resumed later; keep it alive with setTimeout, or kill it',
      );
    },
  );
  app.get(
    '/sandboxes/:sandboxID/metrics',
    { schema: { params: SandboxParams } },
    async (request) => {
      await backend.get(request.params.sandboxID);
      throw notSupported(
        'Per-sandbox metrics are',
        'it keeps no CPU, memory or disk history per sandbox; the server’s Prometheus /metrics has its pools and sessions',
      );
    },
  );
  app.post('/sandboxes/:sandboxID/snapshots', { schema: { params: SandboxParams } }, async () => {
    throw notSupported(
      'Snapshots are',
      'sandpool starts sandboxes from templates only (sandpool template build)',
    );
  });
  app.post('/sandboxes/:sandboxID/fork', { schema: { params: SandboxParams } }, async () => {
    throw notSupported('Forking', 'sandpool cannot copy a running sandbox');
  });
};

function notSupported(what: string, why: string): SandpoolError {
  const verb = what.endsWith(' are') ? '' : ' is';
  return new SandpoolError('invalid_request', `${what}${verb} not supported by sandpool: ${why}.`);
}

/** The session a `NewSandbox` asks for, or a refusal that says what sandpool offers instead. */
export function createInputOf(body: NewSandbox): CreateSessionBody {
  if (body.autoPause === true || body.autoResume !== undefined)
    throw new SandpoolError(
      'invalid_request',
      'autoPause/autoResume are not supported by sandpool (it cannot pause a sandbox); a sandbox ends at its timeout.',
    );
  if (body.mcp !== undefined && body.mcp !== null)
    throw new SandpoolError(
      'invalid_request',
      'The MCP gateway (mcp) is not supported by sandpool; sandpool serves MCP itself at /mcp.',
    );
  if (body.iam !== undefined)
    throw new SandpoolError('invalid_request', 'iam tokens are not supported by sandpool.');
  if (body.volumeMounts !== undefined)
    throw new SandpoolError(
      'invalid_request',
      'Volume mounts are not supported by sandpool; upload files with sandbox.files.write.',
    );
  const network = networkOf(body);
  return {
    template: sandpoolTemplateOf(body.templateID),
    ttl_seconds: Math.max(1, body.timeout ?? DEFAULT_TIMEOUT_SECONDS),
    env: body.envVars,
    metadata: body.metadata,
    network,
  };
}

function networkOf(body: NewSandbox): CreateSessionBody['network'] {
  const net = body.network;
  if (net !== undefined) {
    for (const key of ['egressProxy', 'rules', 'maskRequestHost', 'httpsPorts'] as const) {
      if (net[key] !== undefined)
        throw new SandpoolError(
          'invalid_request',
          `network.${key} is not supported by sandpool; it offers network.allowOut and network.denyOut (host names, *.domains, addresses, CIDRs).`,
        );
    }
    if (net.allowPublicTraffic === true)
      throw new SandpoolError(
        'invalid_request',
        'network.allowPublicTraffic is not supported: sandpool preview URLs always need the sandbox’s traffic access token (the SDK sends it).',
      );
  }
  const allowOut = net?.allowOut ?? (body.allow_internet_access === true ? ['*:*'] : undefined);
  if (allowOut === undefined) {
    if (
      net?.denyOut !== undefined &&
      net.denyOut.length > 0 &&
      body.allow_internet_access !== false
    )
      // E2B's "everything but these": sandpool needs an allow-list to subtract from.
      return { allow_out: ['*:*'], deny_out: net.denyOut };
    return undefined;
  }
  if (body.allow_internet_access === false && allowOut.length > 0)
    throw new SandpoolError(
      'invalid_request',
      'allow_internet_access is false but network.allowOut lists destinations; send one or the other.',
    );
  return { allow_out: allowOut, ...(net?.denyOut ? { deny_out: net.denyOut } : {}) };
}

interface ListFilter {
  metadata?: string;
  state?: string;
  template?: string;
  startedAfter?: string;
  order?: string;
  limit?: string;
  nextToken?: string;
}

/**
 * One page of E2B's list: filtered by metadata (`k=v&k2=v2`, URL-encoded), state (sandpool's are
 * all `running`) and template, ordered by start time, cut after `limit`; the next page starts
 * after the id in `nextToken`.
 */
export function listPage(
  views: E2bSandboxDetail[],
  query: ListFilter,
): { items: E2bSandboxDetail[]; nextToken?: string } {
  const wanted = metadataFilterOf(query.metadata);
  const states = query.state
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const state of states ?? []) {
    if (state !== 'running' && state !== 'paused')
      throw new SandpoolError(
        'invalid_request',
        `state must be running or paused, got "${state}".`,
      );
  }
  const after = query.startedAfter === undefined ? undefined : Date.parse(query.startedAfter);
  if (after !== undefined && Number.isNaN(after))
    throw new SandpoolError('invalid_request', 'startedAfter must be an RFC 3339 time.');
  const template = query.template === undefined ? undefined : sandpoolTemplateOf(query.template);
  const descending = query.order !== 'asc';
  if (query.order !== undefined && query.order !== 'asc' && query.order !== 'desc')
    throw new SandpoolError('invalid_request', 'order must be asc or desc.');
  const limit = query.limit === undefined ? DEFAULT_PAGE : Number(query.limit);
  if (limit < 1 || limit > MAX_PAGE)
    throw new SandpoolError('invalid_request', `limit must be from 1 to ${MAX_PAGE}.`);

  const matching = views
    .filter(() => states === undefined || states.length === 0 || states.includes('running'))
    .filter((v) => template === undefined || v.templateID === template)
    .filter((v) => after === undefined || Date.parse(v.startedAt) > after)
    .filter((v) => [...wanted].every(([k, value]) => v.metadata[k] === value))
    .sort((a, b) => {
      const order = keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0;
      return descending ? -order : order;
    });
  let start = 0;
  if (query.nextToken !== undefined) {
    // The token is the sort key of the first sandbox of the next page; that sandbox may have
    // ended since, so the page starts at the first key at or past it.
    const token = query.nextToken;
    start = matching.findIndex((v) => (descending ? keyOf(v) <= token : keyOf(v) >= token));
    if (start < 0) start = matching.length;
  }
  const items = matching.slice(start, start + limit);
  const next = matching[start + limit];
  return next === undefined ? { items } : { items, nextToken: keyOf(next) };
}

/** A sandbox's place in start order as a string that sorts the same way: time, then id. */
function keyOf(sandbox: E2bSandboxDetail): string {
  return `${String(Date.parse(sandbox.startedAt)).padStart(15, '0')}.${sandbox.sandboxID}`;
}

/** `metadata=k%3Dv%26k2%3Dv2` as the SDK sends it: a URL-encoded query string of pairs. */
function metadataFilterOf(raw: string | undefined): Map<string, string> {
  const pairs = new Map<string, string>();
  if (raw === undefined || raw === '') return pairs;
  for (const [key, value] of new URLSearchParams(raw)) {
    pairs.set(decodeURIComponent(key), decodeURIComponent(value));
  }
  return pairs;
}

import { Type, type Static } from '@sinclair/typebox';
import { ERROR_STATUS } from '../errors/sandpool-error.js';

/** Request and response schemas of the public API; the route types come from them. */

const NoNul = '^[^\\u0000]*$';
// Record keys are checked by pattern only, so the patterns carry the length bounds too.
const EnvName = '^[A-Za-z_][A-Za-z0-9_]{0,255}$';
const MetadataKey = '^[^\\u0000]{1,128}$';

export const EnvSchema = Type.Record(
  Type.String({ pattern: EnvName }),
  Type.String({ pattern: NoNul, maxLength: 32768 }),
  {
    maxProperties: 256,
    // Without this, keys that miss the pattern would pass unchecked.
    additionalProperties: false,
    description: 'Environment variables',
  },
);

export const MetadataSchema = Type.Record(
  Type.String({ pattern: MetadataKey }),
  Type.String({ maxLength: 1024 }),
  {
    maxProperties: 64,
    additionalProperties: false,
    description: 'Free-form labels the client attaches to a session',
  },
);

/** A template's name (`GET /v1/templates` lists them). */
export const TemplateName = Type.String({
  pattern: '^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$',
  description: 'Template to start the session from (GET /v1/templates); default `base`',
});
const EgressPattern = Type.String({ minLength: 1, maxLength: 300, pattern: '^[^\\s,]+$' });

/** A session's egress allow-list (issue 14); `deny_out` wins over `allow_out`. */
export const NetworkPolicy = Type.Object(
  {
    allow_out: Type.Array(EgressPattern, { maxItems: 256 }),
    deny_out: Type.Optional(Type.Array(EgressPattern, { maxItems: 256 })),
  },
  { additionalProperties: false },
);
export type NetworkPolicy = Static<typeof NetworkPolicy>;

export const CreateSessionBody = Type.Object(
  {
    template: Type.Optional(TemplateName),
    ttl_seconds: Type.Optional(Type.Integer({ minimum: 1 })),
    env: Type.Optional(EnvSchema),
    metadata: Type.Optional(MetadataSchema),
    network: Type.Optional(NetworkPolicy),
  },
  { additionalProperties: false },
);
export type CreateSessionBody = Static<typeof CreateSessionBody>;

export const KeepAliveBody = Type.Object(
  { ttl_seconds: Type.Optional(Type.Integer({ minimum: 1 })) },
  { additionalProperties: false },
);
export type KeepAliveBody = Static<typeof KeepAliveBody>;

export const SessionParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
export type SessionParams = Static<typeof SessionParams>;

export const SessionView = Type.Object({
  session_id: Type.String(),
  worker_id: Type.String(),
  template: Type.String({ description: 'The template the session’s sandbox was made from' }),
  created_at: Type.String(),
  expires_at: Type.String(),
  metadata: Type.Record(Type.String(), Type.String()),
  access_token: Type.String({
    description:
      'A secret of this session alone: the in-sandbox APIs (E2B envd routes, preview URLs) require it',
  }),
});

const execFields = {
  command: Type.Optional(Type.String({ pattern: NoNul, maxLength: 1024 * 1024 })),
  argv: Type.Optional(
    Type.Array(Type.String({ pattern: NoNul, maxLength: 1024 * 1024 }), {
      minItems: 1,
      maxItems: 4096,
    }),
  ),
  cwd: Type.Optional(Type.String({ pattern: NoNul, maxLength: 4096 })),
  env: Type.Optional(EnvSchema),
  stdin: Type.Optional(Type.String({ maxLength: 8 * 1024 * 1024 })),
  timeout_ms: Type.Optional(Type.Integer({ minimum: 1 })),
};

export const ExecBody = Type.Object(execFields, { additionalProperties: false });
export type ExecBody = Static<typeof ExecBody>;

/** The seed's `POST /execute`: the exec body plus the session it runs in. */
export const SeedExecuteBody = Type.Object(
  { session_id: Type.String({ minLength: 1, maxLength: 128 }), ...execFields },
  { additionalProperties: false },
);
export type SeedExecuteBody = Static<typeof SeedExecuteBody>;

export const ExecResult = Type.Object({
  stdout: Type.String(),
  stderr: Type.String(),
  exit_code: Type.Integer(),
  duration_ms: Type.Integer(),
  timed_out: Type.Boolean(),
  truncated: Type.Boolean(),
});

export const PathQuery = Type.Object(
  {
    path: Type.String({
      description: 'Relative to /home/sandboxuser, or absolute under it or /tmp',
    }),
  },
  { additionalProperties: false },
);
export type PathQuery = Static<typeof PathQuery>;

export const ErrorResponse = Type.Object({
  error: Type.Object({
    code: Type.String({ enum: Object.keys(ERROR_STATUS), description: 'Machine-readable cause' }),
    message: Type.String({ description: 'What happened and what to do' }),
  }),
});

// Response schemas: they type the answers, serialize them, and document them in /openapi.json.

export const SessionList = Type.Object(
  { sessions: Type.Array(SessionView) },
  { description: 'Every open session' },
);

export const FileEntryView = Type.Object({
  name: Type.String(),
  type: Type.Union([
    Type.Literal('file'),
    Type.Literal('directory'),
    Type.Literal('symlink'),
    Type.Literal('other'),
  ]),
  size: Type.Integer({ description: 'Bytes' }),
  mode: Type.String({ description: 'Permission bits in octal, such as "644"' }),
  mtime: Type.String({ description: 'Last modification, ISO 8601' }),
});

export const FileList = Type.Object(
  { entries: Type.Array(FileEntryView) },
  { description: 'The directory’s entries' },
);

export const WrittenFile = Type.Object(
  {
    path: Type.String({ description: 'Absolute path inside the sandbox' }),
    size: Type.Integer({ description: 'Bytes written' }),
  },
  { description: 'Written' },
);

export const TemplateView = Type.Object({
  name: Type.String(),
  image: Type.Optional(Type.String({ description: 'Image its sandboxes run (on a worker)' })),
  status: Type.Optional(
    Type.String({
      description:
        '`ready`, or `image_missing` (configured; build it with `sandpool template build`)',
    }),
  ),
  pool_size: Type.Integer({ description: 'Warm sandboxes ready now' }),
  pool_target: Type.Optional(Type.Integer({ description: 'Warm sandboxes the pool keeps' })),
  pool_starting: Type.Optional(Type.Integer({ description: 'Sandboxes starting for the pool' })),
  pool_waiting: Type.Optional(Type.Integer({ description: 'Session creates waiting for one' })),
  pool_hits: Type.Optional(Type.Integer({ description: 'Creates that found a warm sandbox' })),
  pool_misses: Type.Optional(Type.Integer({ description: 'Creates that waited for a start' })),
  active_sessions: Type.Integer(),
  pool_error: Type.Optional(Type.String({ description: 'Why the last start failed' })),
  workers: Type.Optional(
    Type.Array(Type.String(), { description: 'On a coordinator: the workers that serve it' }),
  ),
});

export const TemplateList = Type.Object(
  { templates: Type.Array(TemplateView) },
  { description: 'Every template served, with its pool' },
);

/** Health has more fields on a coordinator than on a worker; all are passed through. */
export const HealthView = Type.Object(
  {
    status: Type.String({ description: '"healthy", or "unhealthy" with a reason' }),
    reason: Type.Optional(Type.String()),
    worker_id: Type.Optional(Type.String()),
    pool_size: Type.Optional(Type.Integer()),
    active_sessions: Type.Optional(Type.Integer()),
  },
  { additionalProperties: true, description: 'The server’s state' },
);

/** What each error status means, for the API document. */
const ERROR_MEANINGS: Record<number, string> = {
  400: 'invalid_request (the body, query or a header fails the schema) or invalid_path',
  401: 'unauthorized: an API key is set and the request lacks `Authorization: Bearer <key>`',
  403: 'forbidden_origin: the `Host` or `Origin` header names a site this server does not serve (see --allowed-hosts, --allowed-origins); egress_not_permitted: the network asked for is beyond what this worker allows',
  404: 'session_not_found (unknown, closed or expired), file_not_found, or template_not_found',
  410: 'session_lost: the session’s container died; it cannot come back',
  413: 'payload_too_large: over the upload limit, or no space left in the sandbox',
  500: 'internal_error: a bug in sandpool (logged with its stack); retrying will not help',
  503: 'capacity_exhausted (`Retry-After` set) or runtime_unavailable',
};

/** Every route can answer these: the Host/Origin guard runs first, and a bug is a bug. */
const EVERY_ROUTE = [403, 500] as const;

/** The error responses a route can give, each `{"error": {"code", "message"}}`. */
export function errorResponses<S extends number>(
  ...statuses: S[]
): Record<S | (typeof EVERY_ROUTE)[number], typeof ErrorResponse> {
  const responses = {} as Record<S | (typeof EVERY_ROUTE)[number], typeof ErrorResponse>;
  for (const status of [...statuses, ...EVERY_ROUTE]) {
    responses[status] = Type.Object(ErrorResponse.properties, {
      description: ERROR_MEANINGS[status] ?? 'An error',
    });
  }
  return responses;
}

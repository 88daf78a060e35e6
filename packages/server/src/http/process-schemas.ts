import { Type, type Static } from '@sinclair/typebox';
import { PROCESS_SIGNALS } from '../runtime/sandbox-processes.js';
import { EnvSchema } from './schemas.js';

/** Request and response schemas of the process, terminal and watch routes. */

const NoNul = '^[^\\u0000]*$';

export const TerminalSizeSchema = Type.Object(
  {
    cols: Type.Integer({ minimum: 1, maximum: 1000 }),
    rows: Type.Integer({ minimum: 1, maximum: 1000 }),
  },
  { additionalProperties: false, description: 'Terminal size in characters' },
);

export const StartProcessBody = Type.Object(
  {
    command: Type.Optional(Type.String({ pattern: NoNul, maxLength: 1024 * 1024 })),
    argv: Type.Optional(
      Type.Array(Type.String({ pattern: NoNul, maxLength: 1024 * 1024 }), {
        minItems: 1,
        maxItems: 4096,
      }),
    ),
    cwd: Type.Optional(Type.String({ pattern: NoNul, maxLength: 4096 })),
    env: Type.Optional(EnvSchema),
    tag: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,63}$',
        description: 'A name to find the process by instead of its pid',
      }),
    ),
    stdin: Type.Optional(
      Type.Boolean({ description: 'Keep stdin open for POST .../stdin (default false)' }),
    ),
    timeout_ms: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 2_147_483_647,
        description: '0 (the default): until the session ends; otherwise the group is killed then',
      }),
    ),
    pty: Type.Optional(TerminalSizeSchema),
  },
  { additionalProperties: false },
);
export type StartProcessBody = Static<typeof StartProcessBody>;

export const ProcessParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128 }),
  pid: Type.String({
    minLength: 1,
    maxLength: 64,
    description: 'The process id, or its tag',
  }),
});
export type ProcessParams = Static<typeof ProcessParams>;

export const StartedProcessView = Type.Object(
  {
    pid: Type.Integer(),
    tag: Type.Union([Type.String(), Type.Null()]),
    started_at: Type.String(),
  },
  { description: 'Started' },
);

export const ProcessViewSchema = Type.Object(
  {
    pid: Type.Integer(),
    tag: Type.Union([Type.String(), Type.Null()]),
    command: Type.String(),
    argv: Type.Array(Type.String()),
    cwd: Type.String(),
    pty: Type.Boolean(),
    running: Type.Boolean(),
    exit_code: Type.Union([Type.Integer(), Type.Null()]),
    timed_out: Type.Boolean(),
    started_at: Type.String(),
    ended_at: Type.Union([Type.String(), Type.Null()]),
  },
  { description: 'A running or recently exited process' },
);

export const ProcessList = Type.Object(
  { processes: Type.Array(ProcessViewSchema) },
  { description: 'Running and recently exited processes' },
);

export const StdinBody = Type.Object(
  {
    data: Type.Optional(Type.String({ maxLength: 1024 * 1024 })),
    eof: Type.Optional(Type.Boolean({ description: 'Close stdin after the data' })),
  },
  { additionalProperties: false },
);
export type StdinBody = Static<typeof StdinBody>;

export const SignalBody = Type.Object(
  { signal: Type.Union(PROCESS_SIGNALS.map((name) => Type.Literal(name))) },
  { additionalProperties: false },
);
export type SignalBody = Static<typeof SignalBody>;

export const WatchQuery = Type.Object(
  {
    path: Type.String({
      description: 'A directory, relative to /home/sandboxuser or absolute under it or /tmp',
    }),
    recursive: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
  },
  { additionalProperties: false },
);
export type WatchQuery = Static<typeof WatchQuery>;

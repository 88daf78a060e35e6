import { Type, type Static } from '@sinclair/typebox';
import { EnvSchema, SessionParams } from './schemas.js';

/** Request and response schemas of the code interpreter routes (cells and contexts). */

const Language = Type.Union([Type.Literal('python'), Type.Literal('bash')], {
  description: 'The context’s language (default python)',
});
const ContextId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });

export const RunCodeBody = Type.Object(
  {
    code: Type.String({ maxLength: 1024 * 1024, description: 'The cell' }),
    language: Type.Optional(Language),
    context_id: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_-]{1,64}$',
        description: 'The context to run in; the language’s default context when omitted',
      }),
    ),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 1 })),
    env: Type.Optional(EnvSchema),
  },
  { additionalProperties: false },
);
export type RunCodeBody = Static<typeof RunCodeBody>;

const Text = Type.Optional(Type.String());
export const CodeResultView = Type.Object(
  {
    text: Text,
    html: Text,
    markdown: Text,
    svg: Text,
    png: Type.Optional(Type.String({ description: 'Base64' })),
    jpeg: Type.Optional(Type.String({ description: 'Base64' })),
    pdf: Type.Optional(Type.String({ description: 'Base64' })),
    latex: Text,
    json: Type.Optional(Type.Unknown()),
    javascript: Text,
    is_main_result: Type.Boolean({
      description: 'The value of the cell’s last expression (not a display() call)',
    }),
    extra: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    truncated: Type.Optional(Type.Boolean()),
  },
  { description: 'One rich output, each MIME type in its field' },
);

export const CodeErrorView = Type.Object({
  name: Type.String(),
  value: Type.String(),
  traceback: Type.String(),
  timed_out: Type.Optional(Type.Boolean()),
  context_restarted: Type.Optional(
    Type.Boolean({ description: 'The context was restarted: its variables are gone' }),
  ),
});

export const CodeExecutionView = Type.Object(
  {
    results: Type.Array(CodeResultView),
    stdout: Type.String(),
    stderr: Type.String(),
    error: Type.Optional(CodeErrorView),
    execution_count: Type.Union([Type.Integer(), Type.Null()]),
    duration_ms: Type.Integer(),
    context_id: Type.String(),
    language: Language,
    truncated: Type.Boolean(),
  },
  { description: 'What the cell produced' },
);

export const CreateContextBody = Type.Object(
  {
    language: Type.Optional(Language),
    cwd: Type.Optional(Type.String({ pattern: '^[^\\u0000]*$', maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type CreateContextBody = Static<typeof CreateContextBody>;

export const CodeContextView = Type.Object(
  { context_id: Type.String(), language: Language, cwd: Type.String() },
  { description: 'A code context' },
);

export const CodeContextList = Type.Object(
  { contexts: Type.Array(CodeContextView) },
  { description: 'The session’s contexts' },
);

export const ContextParams = Type.Object({
  id: SessionParams.properties.id,
  cid: ContextId,
});
export type ContextParams = Static<typeof ContextParams>;

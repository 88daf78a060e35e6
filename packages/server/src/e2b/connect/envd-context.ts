import { Code, ConnectError, createContextKey, type HandlerContext } from '@connectrpc/connect';

/** The session an envd request is for, set by the sandbox scope that resolved and checked it. */
export const envdSessionKey = createContextKey<string | undefined>(undefined, {
  description: 'sandpool session id of this envd request',
});

export function sessionIdOf(context: HandlerContext): string {
  const id = context.values.get(envdSessionKey);
  if (id === undefined) {
    // Only reachable when the routes are mounted without the scope that resolves the sandbox.
    throw new ConnectError(
      'internal_error: this envd route was reached without a resolved sandbox.',
      Code.Internal,
    );
  }
  return id;
}

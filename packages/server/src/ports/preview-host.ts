import { parseHostHeader } from '../http/host-origin-guard.js';

/** What a preview host name designates. */
export interface PreviewTarget {
  port: number;
  sessionId: string;
}

const LABEL = /^([0-9]{1,5})-([a-z0-9_-]{1,128})$/;

/**
 * Reads `{port}-{session id}.{previewDomain}[:server port]` from a `Host` header; undefined for
 * any other name (the API's own names among them).
 */
export function parsePreviewHost(
  hostHeader: string | undefined,
  previewDomain: string,
): PreviewTarget | undefined {
  const host = parseHostHeader(hostHeader);
  if (host === undefined) return undefined;
  const suffix = `.${previewDomain.toLowerCase().replace(/\.$/, '')}`;
  if (!host.hostname.endsWith(suffix)) return undefined;
  const match = LABEL.exec(host.hostname.slice(0, -suffix.length));
  if (match === null) return undefined;
  const port = Number(match[1]);
  if (port < 1 || port > 65535) return undefined;
  return { port, sessionId: match[2] };
}

/** The host (with the server's port when it has one) of a session's preview URL. */
export function previewHost(
  target: PreviewTarget,
  previewDomain: string,
  serverPort: string,
): string {
  const name = `${target.port}-${target.sessionId}.${previewDomain.replace(/\.$/, '')}`;
  return serverPort === '' ? name : `${name}:${serverPort}`;
}

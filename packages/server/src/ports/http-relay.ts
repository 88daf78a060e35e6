import {
  request as httpRequest,
  STATUS_CODES,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';

/** Headers of one connection, not of the message (RFC 9110 §7.6.1), never relayed as they are. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
]);

/** Where a relayed request goes: a connection made for it, or a URL (coordinator → worker). */
export type RelayUpstream =
  { connection: Duplex; url?: undefined } | { url: URL; connection?: undefined };

export interface RelayRequest {
  upstream: RelayUpstream;
  method: string;
  /** Path and query sent upstream. */
  path: string;
  /** The request headers to send (already without credentials the upstream must not see). */
  headers: OutgoingHttpHeaders;
}

/** The request's headers without the hop-by-hop ones (and those its `Connection` names). */
export function endToEndHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    (headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function startUpstream(relay: RelayRequest, upgrade: boolean) {
  const headers = { ...relay.headers };
  if (upgrade) {
    headers.connection = 'Upgrade';
    headers.upgrade = relay.headers.upgrade ?? 'websocket';
  }
  const common = { method: relay.method, path: relay.path, headers, setHost: false };
  if (relay.upstream.connection !== undefined) {
    const connection = relay.upstream.connection;
    return httpRequest({ ...common, createConnection: () => connection });
  }
  const url = relay.upstream.url;
  return httpRequest({
    ...common,
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? 80 : Number(url.port),
    agent: false,
  });
}

/**
 * Relays one HTTP request and its response, both streamed (a chunked answer reaches the client
 * as it is produced). The upstream goes when the client does, and the other way round.
 * `onFailure` answers when the upstream broke before its response began.
 */
export function relayHttp(
  client: IncomingMessage,
  response: ServerResponse,
  relay: RelayRequest,
  onFailure: (error: Error) => void,
): void {
  const upstream = startUpstream(relay, false);
  let answered = false;
  upstream.on('response', (answer) => {
    answered = true;
    const headers = endToEndHeaders(answer.headers);
    response.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
    response.flushHeaders();
    answer.pipe(response);
    answer.on('error', () => response.destroy());
    answer.on('aborted', () => response.destroy());
  });
  upstream.on('error', (error) => {
    if (!answered && !response.headersSent) onFailure(error);
    else response.destroy();
  });
  response.on('close', () => {
    if (!response.writableFinished) upstream.destroy();
    relay.upstream.connection?.destroy();
  });
  client.on('error', () => upstream.destroy());
  client.pipe(upstream);
}

/**
 * Relays an upgrade (a WebSocket): the request goes upstream with its Upgrade headers; a 101
 * answer is written to the client's socket and the two sockets are joined byte for byte, any
 * other answer is written as it is and the socket ends. Either side closing closes the other.
 */
export function relayUpgrade(
  client: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  relay: RelayRequest,
  onFailure: (error: Error) => void,
): void {
  const upstream = startUpstream(relay, true);
  let answered = false;
  const closeAll = (other?: Duplex) => {
    socket.destroy();
    other?.destroy();
    relay.upstream.connection?.destroy();
  };
  socket.on('error', () => closeAll());
  upstream.on('upgrade', (answer, upSocket, upHead) => {
    answered = true;
    socket.write(headLines(101, answer.statusMessage, answer.rawHeaders));
    if (upHead.length > 0) socket.write(upHead);
    if (head.length > 0) upSocket.write(head);
    upSocket.pipe(socket);
    socket.pipe(upSocket);
    upSocket.on('error', () => closeAll(upSocket));
    upSocket.on('close', () => closeAll(upSocket));
    socket.on('close', () => closeAll(upSocket));
  });
  upstream.on('response', (answer) => {
    // Refused (401, 404...): the answer as it is, delimited by the end of the connection.
    answered = true;
    const raw: string[] = [];
    for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) {
      const name = answer.rawHeaders[i];
      if (!HOP_BY_HOP.has(name.toLowerCase())) raw.push(name, answer.rawHeaders[i + 1]);
    }
    socket.write(
      headLines(answer.statusCode ?? 502, answer.statusMessage, [...raw, 'connection', 'close']),
    );
    answer.pipe(socket);
    answer.on('end', () => relay.upstream.connection?.destroy());
    answer.on('error', () => closeAll());
  });
  upstream.on('error', (error) => {
    if (!answered) onFailure(error);
    else closeAll();
  });
  client.on('error', () => upstream.destroy());
  upstream.end();
}

/** A status line and headers, as they go on the wire. */
export function headLines(status: number, message: string | undefined, raw: string[]): string {
  let text = `HTTP/1.1 ${status} ${message ?? STATUS_CODES[status] ?? ''}\r\n`;
  for (let i = 0; i + 1 < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${text}\r\n`;
}

import { once } from 'node:events';
import { createServer } from 'node:net';

/**
 * A loopback port nobody listens on right now: for a server to start on, or for a client to
 * find closed (a race is possible but harmless in tests).
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

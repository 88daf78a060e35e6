import type { Duplex } from 'node:stream';

/** Bytes that crossed a tunnel: `in` from the server in the box, `out` to it. */
export type TunnelByteObserver = (direction: 'in' | 'out', bytes: number) => void;

/**
 * TCP connections to servers inside a box, made from inside it (the box needs no network):
 * what preview URLs are carried over.
 */
export interface SandboxTunnels {
  /**
   * A connection to `127.0.0.1:{port}` inside the box, as a Node stream (half-close and
   * backpressure included). Rejects with `port_not_listening` when nothing accepts on the port.
   */
  open(port: number, observe?: TunnelByteObserver): Promise<Duplex>;
  /** Tunnels open now. */
  readonly openCount: number;
}

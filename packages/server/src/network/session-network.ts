/** The isolated network one session's sandbox sits on: its only peer is the worker's proxy. */
export interface SessionNetwork {
  /** The engine's name for the network. */
  name: string;
  /** The host's address on it, where the session's egress proxy listens. */
  gateway: string;
  /** The sandbox's own address on it. */
  sandboxAddress: string;
  subnet: string;
  labels: Record<string, string>;
}

/** Creates and removes session networks (the Docker adapter implements it). */
export interface SessionNetworks {
  /** An internal network in one of the worker's subnets; throws when none is free. */
  create(name: string, labels: Record<string, string>): Promise<SessionNetwork>;
  /** Every network carrying all of these labels. */
  list(labels: Record<string, string>): Promise<SessionNetwork[]>;
  /** No error when it is already gone. */
  remove(name: string): Promise<void>;
}

/** The interface-name prefix of every session bridge, which the firewall rules match. */
export const BRIDGE_PREFIX = 'spe-';

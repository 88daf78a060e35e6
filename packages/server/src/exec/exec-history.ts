/** One finished (or failed) exec as the console's session page lists it. */
export interface ExecRecord {
  /** The shell string, or the argv joined by spaces; cut to {@link COMMAND_CHARS}. */
  command: string;
  started_at: string;
  /** Null when it never ran to an exit (the session was lost, the client went away). */
  exit_code: number | null;
  duration_ms: number;
  timed_out: boolean;
  /** The error code when it failed without an exit. */
  error: string | null;
}

/** Longest command text kept: enough to recognise it, not a copy of a script piped in. */
export const COMMAND_CHARS = 200;

/**
 * The last few execs of each session, newest first, in a bounded ring per session. Keyed by the
 * session object itself, so a session that ends takes its ring with it.
 */
export class ExecHistory<Key extends object> {
  private readonly rings = new WeakMap<Key, ExecRecord[]>();

  constructor(private readonly capacity: number) {}

  record(key: Key, entry: ExecRecord): void {
    if (this.capacity <= 0) return;
    let ring = this.rings.get(key);
    if (ring === undefined) {
      ring = [];
      this.rings.set(key, ring);
    }
    ring.unshift({ ...entry, command: entry.command.slice(0, COMMAND_CHARS) });
    if (ring.length > this.capacity) ring.length = this.capacity;
  }

  /** Newest first; a copy. */
  recent(key: Key): ExecRecord[] {
    return [...(this.rings.get(key) ?? [])];
  }
}

/** The shapes of the public API's answers that the console reads (see /openapi.json). */

export interface SessionView {
  session_id: string;
  worker_id: string;
  template: string;
  created_at: string;
  expires_at: string;
  metadata: Record<string, string>;
}

/** A worker's template with its pool; a coordinator sums fewer figures and names the workers. */
export interface TemplateView {
  name: string;
  status?: string;
  pool_size: number;
  pool_target?: number;
  pool_starting?: number;
  pool_waiting?: number;
  pool_hits?: number;
  pool_misses?: number;
  active_sessions: number;
  pool_error?: string;
  workers?: string[];
}

export interface WorkerHealth {
  worker_id: string;
  url?: string;
  healthy: boolean;
  accepting?: boolean;
  pool_size: number;
  active_sessions: number;
  max_sessions: number;
  last_heartbeat?: string;
}

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  reason?: string;
  role?: string;
  worker_id?: string;
  pool_size?: number;
  active_sessions?: number;
  max_sessions?: number;
  healthy_workers?: number;
  workers?: WorkerHealth[];
  uptime_seconds?: number;
}

export interface FileEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: string;
  mtime: string;
}

export interface ProcessView {
  pid: number;
  tag: string | null;
  command: string;
  pty: boolean;
  running: boolean;
  exit_code: number | null;
  started_at: string;
  ended_at: string | null;
}

export interface ExecRecord {
  command: string;
  started_at: string;
  exit_code: number | null;
  duration_ms: number;
  timed_out: boolean;
  error: string | null;
}

export interface EgressEntry {
  time: string;
  method: string;
  host: string;
  port: number;
  decision: 'allowed' | 'denied';
  rule?: string;
  reason?: string;
  bytes_out: number;
  bytes_in: number;
}

export interface CodeResult {
  text?: string;
  html?: string;
  markdown?: string;
  svg?: string;
  png?: string;
  jpeg?: string;
}

/** One scrape: when, and the summed samples the charts read. */
export interface MetricSample {
  atMs: number;
  values: Map<string, number>;
}

/** The counters each chart is drawn from, a worker's first, then a coordinator's. */
export const CHART_METRICS = {
  creates: ['sandpool_sessions_created_total', 'sandpool_coordinator_sessions_created_total'],
  createSecondsSum: ['sandpool_session_create_seconds_sum'],
  createCount: ['sandpool_session_create_seconds_count'],
  execs: ['sandpool_exec_seconds_count'],
  hits: ['sandpool_pool_hits_total'],
  misses: ['sandpool_pool_misses_total'],
} as const;

/** The charts' points: per scrape interval, null where the server does not have the figure. */
export interface ChartSeries {
  /** Seconds since the epoch (uPlot's x axis). */
  time: number[];
  createsPerSecond: (number | null)[];
  createLatencyMs: (number | null)[];
  execsPerSecond: (number | null)[];
  /** Hits / (hits + misses) in the interval, in percent; null when no session was created. */
  poolHitPercent: (number | null)[];
}

/** Keeps the scrapes of the last `windowMs` and turns counters into rates between them. */
export class MetricHistory {
  private readonly samples: MetricSample[] = [];

  constructor(private readonly windowMs: number) {}

  add(sample: MetricSample): void {
    const last = this.samples.at(-1);
    // A restarted server's counters start again: what came before is no base for a rate.
    if (last !== undefined && this.counterWentBack(last, sample)) this.samples.length = 0;
    this.samples.push(sample);
    while (this.samples.length > 0 && (this.samples[0]?.atMs ?? 0) < sample.atMs - this.windowMs) {
      this.samples.shift();
    }
  }

  series(): ChartSeries {
    const out: ChartSeries = {
      time: [],
      createsPerSecond: [],
      createLatencyMs: [],
      execsPerSecond: [],
      poolHitPercent: [],
    };
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1];
      const b = this.samples[i];
      if (a === undefined || b === undefined) continue;
      const seconds = (b.atMs - a.atMs) / 1000;
      if (seconds <= 0) continue;
      const delta = (metric: keyof typeof CHART_METRICS) => {
        const after = pick(b.values, metric);
        // A labelled counter (the coordinator's creates, by worker) appears at its first count.
        return after === undefined ? undefined : after - (pick(a.values, metric) ?? 0);
      };
      const creates = delta('creates');
      const createSum = delta('createSecondsSum');
      const createCount = delta('createCount');
      const execs = delta('execs');
      const hits = delta('hits');
      const misses = delta('misses');
      out.time.push(b.atMs / 1000);
      out.createsPerSecond.push(creates === undefined ? null : creates / seconds);
      out.createLatencyMs.push(
        createSum === undefined || !createCount ? null : (createSum / createCount) * 1000,
      );
      out.execsPerSecond.push(execs === undefined ? null : execs / seconds);
      out.poolHitPercent.push(
        hits === undefined || misses === undefined || hits + misses === 0
          ? null
          : (100 * hits) / (hits + misses),
      );
    }
    return out;
  }

  private counterWentBack(a: MetricSample, b: MetricSample): boolean {
    return (Object.keys(CHART_METRICS) as (keyof typeof CHART_METRICS)[]).some((metric) => {
      const before = pick(a.values, metric);
      const after = pick(b.values, metric);
      return before !== undefined && after !== undefined && after < before;
    });
  }
}

function pick(values: Map<string, number>, metric: keyof typeof CHART_METRICS): number | undefined {
  for (const name of CHART_METRICS[metric]) {
    const value = values.get(name);
    if (value !== undefined) return value;
  }
  return undefined;
}

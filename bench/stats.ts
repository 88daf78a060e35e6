/** Latency samples in milliseconds, summarised the way the benchmark table prints them. */
export interface Summary {
  count: number;
  median_ms: number;
  p90_ms: number;
  p99_ms: number;
  mean_ms: number;
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    count: sorted.length,
    median_ms: round(percentile(sorted, 50)),
    p90_ms: round(percentile(sorted, 90)),
    p99_ms: round(percentile(sorted, 99)),
    mean_ms: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
  };
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` at once; returns each duration. */
export async function timedPool(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<{ samples: number[]; wallMs: number }> {
  const samples: number[] = [];
  let next = 0;
  const started = performance.now();
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const index = next++;
      const t = performance.now();
      await task(index);
      samples.push(performance.now() - t);
    }
  });
  await Promise.all(lanes);
  return { samples, wallMs: performance.now() - started };
}

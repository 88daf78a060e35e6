/**
 * Sums of the samples in a Prometheus text exposition, by metric name (labels summed over), which
 * is all the console's charts need: `sandpool_pool_hits_total`, `..._seconds_sum`, `..._count`.
 */
export function parsePrometheusText(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    // name{labels} value [timestamp]; label values may hold spaces, so cut at the closing brace.
    const brace = line.indexOf('{');
    const close = brace >= 0 ? line.lastIndexOf('}') : -1;
    const name = brace >= 0 ? line.slice(0, brace) : (line.split(/\s+/)[0] ?? '');
    const rest = (close >= 0 ? line.slice(close + 1) : line.slice(name.length)).trim();
    const value = Number(rest.split(/\s+/)[0]);
    if (name === '' || !Number.isFinite(value)) continue;
    sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return sums;
}

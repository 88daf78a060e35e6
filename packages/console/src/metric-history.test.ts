import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricHistory } from './metric-history.js';
import { parsePrometheusText } from './prometheus-text.js';

const scrape = (atMs: number, text: string) => ({ atMs, values: parsePrometheusText(text) });

test('sums samples by name over their labels and skips comments', () => {
  const values = parsePrometheusText(
    [
      '# HELP sandpool_pool_hits_total Sessions that got a warm container at once',
      '# TYPE sandpool_pool_hits_total counter',
      'sandpool_pool_hits_total 7',
      'sandpool_coordinator_sessions_created_total{worker="a b"} 2',
      'sandpool_coordinator_sessions_created_total{worker="c"} 3 1700000000000',
      'garbage{',
    ].join('\n'),
  );
  assert.equal(values.get('sandpool_pool_hits_total'), 7);
  assert.equal(values.get('sandpool_coordinator_sessions_created_total'), 5);
  assert.equal(values.size, 2);
});

test('turns counters into rates, mean latency and hit rate per interval', () => {
  const history = new MetricHistory(60_000);
  history.add(
    scrape(
      0,
      'sandpool_sessions_created_total 1\nsandpool_session_create_seconds_sum 0.1\nsandpool_session_create_seconds_count 1\nsandpool_exec_seconds_count 0\nsandpool_pool_hits_total 1\nsandpool_pool_misses_total 0',
    ),
  );
  history.add(
    scrape(
      2000,
      'sandpool_sessions_created_total 5\nsandpool_session_create_seconds_sum 0.5\nsandpool_session_create_seconds_count 5\nsandpool_exec_seconds_count 10\nsandpool_pool_hits_total 4\nsandpool_pool_misses_total 1',
    ),
  );
  const series = history.series();
  assert.deepEqual(series.time, [2]);
  assert.deepEqual(series.createsPerSecond, [2]);
  assert.equal(Math.round(series.createLatencyMs[0] ?? 0), 100);
  assert.deepEqual(series.execsPerSecond, [5]);
  assert.deepEqual(series.poolHitPercent, [75]);
});

test('a coordinator has creates only; the rest is null, and old or reset samples drop out', () => {
  const history = new MetricHistory(5000);
  history.add(scrape(-1000, '# no create yet: the labelled counter has no sample'));
  history.add(scrape(0, 'sandpool_coordinator_sessions_created_total{worker="a"} 9'));
  history.add(scrape(1000, 'sandpool_coordinator_sessions_created_total{worker="a"} 10'));
  let series = history.series();
  assert.deepEqual(series.createsPerSecond, [9, 1]);
  assert.deepEqual(
    [series.createLatencyMs, series.execsPerSecond, series.poolHitPercent],
    [
      [null, null],
      [null, null],
      [null, null],
    ],
  );
  history.add(scrape(2000, 'sandpool_coordinator_sessions_created_total{worker="a"} 0'));
  assert.deepEqual(history.series().time, []);
  history.add(scrape(9000, 'sandpool_coordinator_sessions_created_total{worker="a"} 4'));
  series = history.series();
  assert.deepEqual(series.time, []); // The 2000 ms sample is older than the window.
});

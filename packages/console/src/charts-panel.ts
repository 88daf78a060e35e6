import uPlot from 'uplot';
import type { ApiClient } from './api-client.js';
import type { TemplateView } from './api-types.js';
import { h, replace } from './dom.js';
import { MetricHistory, type ChartSeries } from './metric-history.js';
import { parsePrometheusText } from './prometheus-text.js';

const POLL_MS = 2000;
const WINDOW_MS = 10 * 60 * 1000;

interface ChartSpec {
  title: string;
  unit: string;
  pick: (series: ChartSeries) => (number | null)[];
  /** A fixed y range (percentages); otherwise from 0 to the largest value. */
  max?: number;
}

const CHARTS: ChartSpec[] = [
  { title: 'Session creates', unit: 'per s', pick: (s) => s.createsPerSecond },
  { title: 'Create latency', unit: 'ms (mean)', pick: (s) => s.createLatencyMs },
  { title: 'Execs', unit: 'per s', pick: (s) => s.execsPerSecond },
  { title: 'Pool hit rate', unit: '%', pick: (s) => s.poolHitPercent, max: 100 },
];

/**
 * Charts of the last ten minutes, from this server's own `/metrics` polled every two seconds
 * (a coordinator has creates only; the others say so).
 */
export class ChartsPanel {
  readonly element = h('section', { class: 'panel charts', 'aria-labelledby': 'charts-title' });
  private readonly history = new MetricHistory(WINDOW_MS);
  private readonly plots: {
    spec: ChartSpec;
    box: HTMLElement;
    plot?: uPlot;
    latest: HTMLElement;
  }[];
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly status = h('p', { class: 'muted', role: 'status' });

  constructor(private readonly api: ApiClient) {
    const grid = h('div', { class: 'chart-grid' });
    this.plots = CHARTS.map((spec) => {
      const latest = h('span', { class: 'latest' }, '…');
      const box = h('div', { class: 'chart', role: 'img', 'aria-label': `${spec.title} chart` });
      grid.append(
        h('figure', {}, h('figcaption', {}, `${spec.title} (${spec.unit}) `, latest), box),
      );
      return { spec, box, latest };
    });
    replace(this.element, h('h2', { id: 'charts-title' }, 'Last 10 minutes'), this.status, grid);
  }

  start(): void {
    void this.poll();
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const entry of this.plots) entry.plot?.destroy();
  }

  private async poll(): Promise<void> {
    try {
      const text = await (await this.api.fetch('/metrics')).text();
      const values = parsePrometheusText(text);
      if (!values.has('sandpool_pool_hits_total')) await this.addClusterPoolFigures(values);
      this.history.add({ atMs: Date.now(), values });
      this.status.textContent = '';
      this.draw();
    } catch (error) {
      this.status.textContent = `Charts paused: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /**
   * A coordinator's own metrics have no pool figures; its `/v1/templates` sums its workers'
   * hits and misses (from their heartbeats), which gives the hit rate all the same.
   */
  private async addClusterPoolFigures(values: Map<string, number>): Promise<void> {
    const { templates } = await this.api.json<{ templates: TemplateView[] }>('/v1/templates');
    if (!templates.some((t) => t.pool_hits !== undefined)) return;
    const sum = (pick: (t: TemplateView) => number | undefined) =>
      templates.reduce((n, t) => n + (pick(t) ?? 0), 0);
    values.set(
      'sandpool_pool_hits_total',
      sum((t) => t.pool_hits),
    );
    values.set(
      'sandpool_pool_misses_total',
      sum((t) => t.pool_misses),
    );
  }

  private draw(): void {
    const series = this.history.series();
    for (const entry of this.plots) {
      const values = entry.spec.pick(series);
      const last = values.at(-1);
      const known = values.some((v) => v !== null);
      entry.latest.textContent =
        last === undefined
          ? 'collecting…'
          : !known
            ? 'not on this server'
            : last === null
              ? '—'
              : last.toFixed(last < 10 ? 2 : 0);
      const data: uPlot.AlignedData = [series.time, values];
      if (entry.plot === undefined) {
        const width = Math.max(200, entry.box.clientWidth || 280);
        entry.plot = new uPlot(
          {
            width,
            height: 120,
            legend: { show: false },
            cursor: { show: false },
            scales: {
              // Always the whole window, ending now, however few samples there are yet.
              x: { time: true, range: (_plot, _min, max) => [max - WINDOW_MS / 1000, max] },
              y: {
                range: (_plot, _min, max) => [0, entry.spec.max ?? Math.max(1, max * 1.2)],
              },
            },
            axes: [{ size: 30 }, { size: 40 }],
            series: [{}, { stroke: '#2563eb', width: 2, spanGaps: false }],
          },
          data,
          entry.box,
        );
      } else {
        entry.plot.setSize({ width: Math.max(200, entry.box.clientWidth || 280), height: 120 });
        entry.plot.setData(data);
      }
    }
  }
}

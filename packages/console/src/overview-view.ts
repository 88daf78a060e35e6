import { type ApiClient, seg } from './api-client.js';
import type { HealthReport, SessionView, TemplateView, WorkerHealth } from './api-types.js';
import { ChartsPanel } from './charts-panel.js';
import { duration, errorText, h, notice, replace } from './dom.js';

const POLL_MS = 2000;

/**
 * The front page: live sessions (filterable, created and deleted here), the pool of each
 * template, the workers' health, and the charts. On a coordinator every list spans its workers.
 */
export class OverviewView {
  readonly element = h('div', { class: 'overview' });
  private readonly sessionRows = h('tbody');
  private readonly sessionCount = h('span', { class: 'muted', role: 'status' });
  private readonly filter = h('input', {
    id: 'session-filter',
    type: 'search',
    placeholder: 'id, template, worker or metadata',
  });
  private readonly templateSelect = h('select', { id: 'create-template', name: 'template' });
  private readonly metadataInput = h('input', {
    id: 'create-metadata',
    name: 'metadata',
    placeholder: 'owner=alice, purpose=debug',
  });
  private readonly createButton = h('button', { type: 'submit' }, 'Create session');
  private readonly createStatus = h('div', { 'aria-live': 'polite' });
  private readonly listStatus = h('div', { 'aria-live': 'polite' });
  private readonly poolRows = h('tbody');
  private readonly workerRows = h('tbody');
  private readonly charts: ChartsPanel;
  private sessions: SessionView[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly api: ApiClient) {
    this.charts = new ChartsPanel(api);
    this.filter.addEventListener('input', () => this.renderSessions());
    const form = h(
      'form',
      { class: 'create', 'aria-labelledby': 'create-title' },
      h('h2', { id: 'create-title' }, 'New session'),
      h('label', { for: 'create-template' }, 'Template'),
      this.templateSelect,
      h('label', { for: 'create-metadata' }, 'Metadata (key=value, comma separated)'),
      this.metadataInput,
      this.createButton,
      this.createStatus,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.create();
    });
    replace(
      this.element,
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'sessions-title' },
        h('h2', { id: 'sessions-title' }, 'Sessions ', this.sessionCount),
        h('label', { for: 'session-filter' }, 'Filter'),
        this.filter,
        this.listStatus,
        h(
          'div',
          { class: 'table-scroll' },
          h(
            'table',
            { id: 'sessions' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ...[
                  'Session',
                  'Template',
                  'Worker',
                  'Age',
                  'Expires in',
                  'Metadata',
                  'State',
                  '',
                ].map((t) => h('th', { scope: 'col' }, t)),
              ),
            ),
            this.sessionRows,
          ),
        ),
      ),
      h('section', { class: 'panel' }, form),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'workers-title' },
        h('h2', { id: 'workers-title' }, 'Workers'),
        h(
          'div',
          { class: 'table-scroll' },
          h(
            'table',
            { id: 'workers' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ...['Worker', 'Health', 'Ready', 'Sessions', 'Last heartbeat'].map((t) =>
                  h('th', { scope: 'col' }, t),
                ),
              ),
            ),
            this.workerRows,
          ),
        ),
      ),
      h(
        'section',
        { class: 'panel pools', 'aria-labelledby': 'pools-title' },
        h('h2', { id: 'pools-title' }, 'Pools'),
        h(
          'div',
          { class: 'table-scroll' },
          h(
            'table',
            { id: 'pools' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ...[
                  'Template',
                  'Target',
                  'Ready',
                  'Starting',
                  'Hits',
                  'Misses',
                  'Active',
                  'Note',
                ].map((t) => h('th', { scope: 'col' }, t)),
              ),
            ),
            this.poolRows,
          ),
        ),
      ),
      this.charts.element,
    );
  }

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), POLL_MS);
    this.charts.start();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.charts.stop();
  }

  /** Reads sessions, templates and health again; each part shows its own error. */
  async refresh(): Promise<void> {
    await Promise.all([this.refreshSessions(), this.refreshPools()]);
  }

  private async refreshSessions(): Promise<void> {
    try {
      const { sessions } = await this.api.json<{ sessions: SessionView[] }>('/v1/sessions');
      this.sessions = sessions.sort((a, b) => b.created_at.localeCompare(a.created_at));
      replace(this.listStatus);
      this.renderSessions();
    } catch (error) {
      replace(this.listStatus, notice('error', `Could not list sessions: ${errorText(error)}`));
    }
  }

  private renderSessions(): void {
    const words = this.filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    const now = Date.now();
    const shown = this.sessions.filter((s) => {
      const haystack = [
        s.session_id,
        s.template,
        s.worker_id,
        ...Object.entries(s.metadata).map(([k, v]) => `${k}=${v}`),
      ]
        .join(' ')
        .toLowerCase();
      return words.every((w) => haystack.includes(w));
    });
    this.sessionCount.textContent = `(${shown.length} of ${this.sessions.length})`;
    replace(
      this.sessionRows,
      ...shown.map((s) => {
        const expiresIn = Date.parse(s.expires_at) - now;
        const remove = h(
          'button',
          { type: 'button', class: 'danger', 'aria-label': `Delete session ${s.session_id}` },
          'Delete',
        );
        remove.addEventListener('click', () => void this.remove(s.session_id, remove));
        return h(
          'tr',
          { 'data-session': s.session_id },
          h(
            'td',
            { 'data-label': 'Session' },
            h('a', { href: `#/sessions/${seg(s.session_id)}` }, s.session_id),
          ),
          h('td', { 'data-label': 'Template' }, s.template),
          h('td', { 'data-label': 'Worker' }, s.worker_id),
          h('td', { 'data-label': 'Age' }, duration(now - Date.parse(s.created_at))),
          h('td', { 'data-label': 'Expires in' }, duration(expiresIn)),
          h(
            'td',
            { class: 'metadata', 'data-label': 'Metadata' },
            Object.entries(s.metadata)
              .map(([k, v]) => `${k}=${v}`)
              .join(', '),
          ),
          h('td', { 'data-label': 'State' }, expiresIn > 0 ? 'active' : 'expiring'),
          h('td', {}, remove),
        );
      }),
    );
    if (shown.length === 0) {
      this.sessionRows.append(
        h(
          'tr',
          {},
          h(
            'td',
            { colspan: 8, class: 'muted' },
            this.sessions.length === 0
              ? 'No sessions yet: create one.'
              : 'No session matches the filter.',
          ),
        ),
      );
    }
  }

  private async refreshPools(): Promise<void> {
    try {
      const [{ templates }, health] = await Promise.all([
        this.api.json<{ templates: TemplateView[] }>('/v1/templates'),
        this.health(),
      ]);
      this.renderTemplates(templates);
      this.renderWorkers(health);
    } catch (error) {
      replace(
        this.poolRows,
        h(
          'tr',
          {},
          h('td', { colspan: 8 }, notice('error', `Could not read the pools: ${errorText(error)}`)),
        ),
      );
    }
  }

  /** /health answers 503 with a body when unhealthy: that body is what the table shows. */
  private async health(): Promise<HealthReport> {
    const response = await fetch('/health', { credentials: 'omit' });
    return (await response.json()) as HealthReport;
  }

  private renderTemplates(templates: TemplateView[]): void {
    const selected = this.templateSelect.value;
    replace(
      this.templateSelect,
      ...templates.map((t) =>
        h('option', { value: t.name, selected: t.name === selected }, t.name),
      ),
    );
    const figure = (n: number | undefined) => (n === undefined ? '—' : String(n));
    replace(
      this.poolRows,
      ...templates.map((t) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, t.name),
          h('td', {}, figure(t.pool_target)),
          h('td', {}, figure(t.pool_size)),
          h('td', {}, figure(t.pool_starting)),
          h('td', {}, figure(t.pool_hits)),
          h('td', {}, figure(t.pool_misses)),
          h('td', {}, figure(t.active_sessions)),
          h(
            'td',
            {},
            t.pool_error ??
              (t.workers !== undefined ? `on ${t.workers.join(', ')}` : (t.status ?? '')),
          ),
        ),
      ),
    );
  }

  private renderWorkers(health: HealthReport): void {
    const workers: WorkerHealth[] =
      health.workers ??
      (health.worker_id !== undefined
        ? [
            {
              worker_id: health.worker_id,
              healthy: health.status === 'healthy',
              pool_size: health.pool_size ?? 0,
              active_sessions: health.active_sessions ?? 0,
              max_sessions: health.max_sessions ?? 0,
            },
          ]
        : []);
    replace(
      this.workerRows,
      ...workers.map((w) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, w.worker_id),
          h(
            'td',
            { class: w.healthy ? 'ok' : 'bad' },
            w.healthy ? (w.accepting === false ? 'healthy, full' : 'healthy') : 'unhealthy',
          ),
          h('td', {}, String(w.pool_size)),
          h('td', {}, `${w.active_sessions} / ${w.max_sessions}`),
          h('td', {}, w.last_heartbeat ?? 'this server'),
        ),
      ),
    );
    if (health.status !== 'healthy' && health.reason !== undefined) {
      this.workerRows.append(h('tr', {}, h('td', { colspan: 5 }, notice('error', health.reason))));
    }
  }

  private async create(): Promise<void> {
    const metadata: Record<string, string> = {};
    for (const pair of this.metadataInput.value.split(',')) {
      const [key, ...rest] = pair.split('=');
      if (key === undefined || key.trim() === '') continue;
      if (rest.length === 0) {
        replace(
          this.createStatus,
          notice(
            'error',
            `"${pair.trim()}" is not key=value: write metadata as owner=alice, purpose=debug.`,
          ),
        );
        return;
      }
      metadata[key.trim()] = rest.join('=').trim();
    }
    this.createButton.disabled = true;
    replace(this.createStatus, notice('info', 'Creating…'));
    try {
      const body: Record<string, unknown> = {};
      if (this.templateSelect.value !== '') body.template = this.templateSelect.value;
      if (Object.keys(metadata).length > 0) body.metadata = metadata;
      const created = await this.api.json<SessionView>('/v1/sessions', { method: 'POST', body });
      this.sessions = [
        created,
        ...this.sessions.filter((s) => s.session_id !== created.session_id),
      ];
      this.renderSessions();
      replace(
        this.createStatus,
        notice('info', 'Created '),
        h('a', { href: `#/sessions/${seg(created.session_id)}` }, `open ${created.session_id}`),
      );
      void this.refreshPools();
    } catch (error) {
      replace(
        this.createStatus,
        notice('error', `Could not create a session: ${errorText(error)}`),
      );
    } finally {
      this.createButton.disabled = false;
    }
  }

  private async remove(id: string, button: HTMLButtonElement): Promise<void> {
    if (!window.confirm(`Delete session ${id}? Its sandbox and files are destroyed.`)) return;
    button.disabled = true;
    try {
      await this.api.fetch(`/v1/sessions/${seg(id)}`, { method: 'DELETE' });
      this.sessions = this.sessions.filter((s) => s.session_id !== id);
      this.renderSessions();
      replace(this.listStatus, notice('info', `Deleted ${id}.`));
    } catch (error) {
      button.disabled = false;
      replace(this.listStatus, notice('error', `Could not delete ${id}: ${errorText(error)}`));
    }
  }
}

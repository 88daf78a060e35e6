import { type ApiClient, seg } from './api-client.js';
import type { SessionView as Session } from './api-types.js';
import { CodePanel } from './code-panel.js';
import { duration, errorText, h, notice, replace } from './dom.js';
import { FilesPanel } from './files-panel.js';
import { EgressPanel, ExecsPanel, ProcessesPanel } from './activity-panels.js';
import { TerminalPanel } from './terminal-panel.js';

const POLL_MS = 3000;

/** One session: its terminal, files, code cell, processes, recent execs and egress. */
export class SessionPage {
  readonly element = h('div', { class: 'session-page' });
  private readonly header = h('section', { class: 'panel', 'aria-labelledby': 'session-title' });
  private readonly status = h('div', { 'aria-live': 'polite' });
  private terminal: TerminalPanel | undefined;
  private files: FilesPanel | undefined;
  private processes: ProcessesPanel | undefined;
  private execs: ExecsPanel | undefined;
  private egress: EgressPanel | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly api: ApiClient,
    private readonly sessionId: string,
  ) {
    replace(
      this.element,
      h('p', {}, h('a', { href: '#/' }, '← All sessions')),
      this.header,
      this.status,
    );
  }

  async start(): Promise<void> {
    let session: Session;
    try {
      session = await this.api.json<Session>(`/v1/sessions/${seg(this.sessionId)}`);
    } catch (error) {
      replace(
        this.status,
        notice('error', `${errorText(error)} Go back to the list and pick a live session.`),
      );
      return;
    }
    this.renderHeader(session);
    this.terminal = new TerminalPanel(this.api, this.sessionId);
    this.files = new FilesPanel(this.api, this.sessionId);
    this.processes = new ProcessesPanel(this.api, this.sessionId);
    this.execs = new ExecsPanel(this.api, this.sessionId);
    this.egress = new EgressPanel(this.api, this.sessionId);
    this.element.append(
      h(
        'div',
        { class: 'session-grid' },
        this.terminal.element,
        this.files.element,
        new CodePanel(this.api, this.sessionId).element,
        this.processes.element,
        this.execs.element,
        this.egress.element,
      ),
    );
    await this.terminal.open();
    await this.poll();
    void this.files.refresh();
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  private async poll(): Promise<void> {
    await Promise.all([this.processes?.refresh(), this.execs?.refresh(), this.egress?.refresh()]);
  }

  private renderHeader(session: Session): void {
    const now = Date.now();
    const keep = h('button', { type: 'button' }, 'Keep alive');
    keep.addEventListener('click', () => void this.keepAlive());
    const remove = h(
      'button',
      { type: 'button', class: 'danger', id: 'delete-session' },
      'Delete session',
    );
    remove.addEventListener('click', () => void this.remove());
    replace(
      this.header,
      h('h2', { id: 'session-title' }, `Session ${session.session_id}`),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Template'),
        h('dd', {}, session.template),
        h('dt', {}, 'Worker'),
        h('dd', {}, session.worker_id),
        h('dt', {}, 'Age'),
        h('dd', {}, duration(now - Date.parse(session.created_at))),
        h('dt', {}, 'Expires in'),
        h('dd', {}, duration(Date.parse(session.expires_at) - now)),
        h('dt', {}, 'Metadata'),
        h(
          'dd',
          {},
          Object.entries(session.metadata)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ') || 'none',
        ),
      ),
      h('div', { class: 'buttons' }, keep, remove),
    );
  }

  private async keepAlive(): Promise<void> {
    try {
      this.renderHeader(
        await this.api.json<Session>(`/v1/sessions/${seg(this.sessionId)}/keepalive`, {
          method: 'POST',
        }),
      );
      replace(this.status, notice('info', 'Extended.'));
    } catch (error) {
      replace(this.status, notice('error', `Could not extend it: ${errorText(error)}`));
    }
  }

  private async remove(): Promise<void> {
    if (!window.confirm(`Delete session ${this.sessionId}? Its sandbox and files are destroyed.`))
      return;
    try {
      this.stop();
      await this.api.fetch(`/v1/sessions/${seg(this.sessionId)}`, { method: 'DELETE' });
      location.hash = '#/';
    } catch (error) {
      replace(this.status, notice('error', `Could not delete it: ${errorText(error)}`));
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.terminal?.close();
    this.terminal = undefined;
  }
}

/** One process: its live output (kept output first) and a button to kill it. */
export class ProcessPage {
  readonly element = h('div', { class: 'process-page' });
  private readonly output = h('pre', {
    class: 'stdout live',
    id: 'process-output',
    'aria-live': 'off',
  });
  private readonly state = h('p', { id: 'process-state', role: 'status' });
  private readonly status = h('div', { 'aria-live': 'polite' });
  private readonly abort = new AbortController();

  constructor(
    private readonly api: ApiClient,
    private readonly sessionId: string,
    private readonly pid: string,
  ) {
    const kill = h('button', { type: 'button', class: 'danger', id: 'kill-process' }, 'Kill');
    kill.addEventListener('click', () => void this.kill());
    replace(
      this.element,
      h('p', {}, h('a', { href: `#/sessions/${seg(sessionId)}` }, '← Back to the session')),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'process-title' },
        h('h2', { id: 'process-title' }, `Process ${pid}`),
        this.state,
        kill,
        this.status,
        h('h3', {}, 'Output'),
        this.output,
      ),
    );
  }

  private get path(): string {
    return `/v1/sessions/${seg(this.sessionId)}/processes/${seg(this.pid)}`;
  }

  async start(): Promise<void> {
    try {
      const view = await this.api.json<{
        command: string;
        running: boolean;
        exit_code: number | null;
      }>(this.path);
      this.state.textContent = `${view.command}: ${view.running ? 'running' : `exited ${view.exit_code ?? '?'}`}`;
      await this.api.ndjson(`${this.path}/output`, { signal: this.abort.signal }, (event) => {
        if (typeof event.data === 'string') {
          this.output.append(event.data);
        } else if (event.type === 'exit') {
          this.state.textContent = `${view.command}: exited ${typeof event.exit_code === 'number' ? event.exit_code : '?'}`;
        } else if (event.type === 'error') {
          const error = event.error as { message?: string } | undefined;
          replace(this.status, notice('error', error?.message ?? 'The output stream failed.'));
        }
      });
    } catch (error) {
      if (!this.abort.signal.aborted) replace(this.status, notice('error', errorText(error)));
    }
  }

  private async kill(): Promise<void> {
    try {
      const ended = await this.api.json<{ exit_code: number | null }>(this.path, {
        method: 'DELETE',
      });
      replace(this.status, notice('info', `Killed (exit ${ended.exit_code ?? '?'}).`));
    } catch (error) {
      replace(this.status, notice('error', `Could not kill it: ${errorText(error)}`));
    }
  }

  stop(): void {
    this.abort.abort();
  }
}

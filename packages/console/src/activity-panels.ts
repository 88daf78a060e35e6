import { type ApiClient, seg } from './api-client.js';
import type { EgressEntry, ExecRecord, ProcessView } from './api-types.js';
import { bytes, errorText, h, notice, replace, actionForm } from './dom.js';

/** Running and recently exited processes: start one, open its page (live output), kill it. */
export class ProcessesPanel {
  readonly element = h('section', { class: 'panel', 'aria-labelledby': 'processes-title' });
  private readonly rows = h('tbody');
  private readonly status = h('div', { 'aria-live': 'polite' });
  private readonly command = h('input', {
    id: 'process-command',
    placeholder: 'sleep 300',
    autocomplete: 'off',
  });

  constructor(
    private readonly api: ApiClient,
    private readonly sessionId: string,
  ) {
    const form = actionForm(
      { class: 'inline' },
      () => this.start(),
      h('label', { for: 'process-command' }, 'Start in the background'),
      this.command,
      h('button', { type: 'submit' }, 'Start'),
    );
    replace(
      this.element,
      h('h2', { id: 'processes-title' }, 'Processes'),
      form,
      this.status,
      h(
        'div',
        { class: 'table-scroll' },
        h(
          'table',
          { id: 'processes' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Pid', 'Command', 'State', 'Started'].map((t) => h('th', { scope: 'col' }, t)),
            ),
          ),
          this.rows,
        ),
      ),
    );
  }

  async refresh(): Promise<void> {
    try {
      const { processes } = await this.api.json<{ processes: ProcessView[] }>(
        `/v1/sessions/${seg(this.sessionId)}/processes`,
      );
      replace(
        this.rows,
        ...processes.map((p) =>
          h(
            'tr',
            { 'data-pid': p.pid },
            h(
              'td',
              {},
              h(
                'a',
                { href: `#/sessions/${seg(this.sessionId)}/processes/${p.pid}` },
                String(p.pid),
              ),
            ),
            h('td', {}, p.tag ? `${p.command} (${p.tag})` : p.command),
            h(
              'td',
              {},
              p.running
                ? p.pty
                  ? 'running (terminal)'
                  : 'running'
                : `exited ${p.exit_code ?? '?'}`,
            ),
            h('td', {}, new Date(p.started_at).toLocaleTimeString()),
          ),
        ),
      );
      if (processes.length === 0)
        this.rows.append(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No processes.')));
    } catch (error) {
      replace(this.status, notice('error', `Could not list processes: ${errorText(error)}`));
    }
  }

  private async start(): Promise<void> {
    const command = this.command.value.trim();
    if (command === '') {
      replace(this.status, notice('error', 'Type a command to start, such as: sleep 300'));
      return;
    }
    try {
      const started = await this.api.json<{ pid: number }>(
        `/v1/sessions/${seg(this.sessionId)}/processes`,
        {
          method: 'POST',
          body: { command },
        },
      );
      replace(
        this.status,
        notice('info', `Started `),
        h(
          'a',
          { href: `#/sessions/${seg(this.sessionId)}/processes/${started.pid}` },
          `process ${started.pid}`,
        ),
      );
      this.command.value = '';
      await this.refresh();
    } catch (error) {
      replace(this.status, notice('error', `Could not start it: ${errorText(error)}`));
    }
  }
}

/** Recent execs with exit codes and durations, and a box to run one. */
export class ExecsPanel {
  readonly element = h('section', { class: 'panel', 'aria-labelledby': 'execs-title' });
  private readonly rows = h('tbody');
  private readonly status = h('div', { 'aria-live': 'polite' });
  private readonly command = h('input', {
    id: 'exec-command',
    placeholder: 'ls -la',
    autocomplete: 'off',
  });
  private readonly output = h('pre', { class: 'stdout', id: 'exec-output', hidden: true });

  constructor(
    private readonly api: ApiClient,
    private readonly sessionId: string,
  ) {
    const form = actionForm(
      { class: 'inline' },
      () => this.exec(),
      h('label', { for: 'exec-command' }, 'Run a command'),
      this.command,
      h('button', { type: 'submit' }, 'Run'),
    );
    replace(
      this.element,
      h('h2', { id: 'execs-title' }, 'Recent execs'),
      form,
      this.status,
      this.output,
      h(
        'div',
        { class: 'table-scroll' },
        h(
          'table',
          { id: 'execs' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Command', 'Exit', 'Duration', 'Started'].map((t) =>
                h('th', { scope: 'col' }, t),
              ),
            ),
          ),
          this.rows,
        ),
      ),
    );
  }

  async refresh(): Promise<void> {
    try {
      const { execs } = await this.api.json<{ execs: ExecRecord[] }>(
        `/v1/sessions/${seg(this.sessionId)}/execs`,
      );
      replace(
        this.rows,
        ...execs.map((e) =>
          h(
            'tr',
            {},
            h('td', { class: 'command' }, e.command),
            h(
              'td',
              { class: e.exit_code === 0 ? 'ok' : 'bad' },
              e.exit_code === null
                ? (e.error ?? 'failed')
                : e.timed_out
                  ? `${e.exit_code} (timed out)`
                  : String(e.exit_code),
            ),
            h('td', {}, `${e.duration_ms} ms`),
            h('td', {}, new Date(e.started_at).toLocaleTimeString()),
          ),
        ),
      );
      if (execs.length === 0)
        this.rows.append(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No execs yet.')));
    } catch (error) {
      replace(this.status, notice('error', `Could not read the execs: ${errorText(error)}`));
    }
  }

  private async exec(): Promise<void> {
    const command = this.command.value.trim();
    if (command === '') return;
    try {
      const result = await this.api.json<{ stdout: string; stderr: string; exit_code: number }>(
        `/v1/sessions/${seg(this.sessionId)}/exec`,
        { method: 'POST', body: { command } },
      );
      this.output.hidden = false;
      this.output.textContent =
        `${result.stdout}${result.stderr}` || `(no output, exit ${result.exit_code})`;
      replace(this.status);
    } catch (error) {
      replace(this.status, notice('error', `The command did not run: ${errorText(error)}`));
    }
    await this.refresh();
  }
}

/** The session's egress policy and its recent decisions (issue 12). */
export class EgressPanel {
  readonly element = h('section', { class: 'panel', 'aria-labelledby': 'egress-title' });
  private readonly body = h('div');

  constructor(
    private readonly api: ApiClient,
    private readonly sessionId: string,
  ) {
    replace(this.element, h('h2', { id: 'egress-title' }, 'Egress'), this.body);
  }

  async refresh(): Promise<void> {
    try {
      const base = `/v1/sessions/${seg(this.sessionId)}/network`;
      const [{ network }, { entries }] = await Promise.all([
        this.api.json<{ network: { allow_out?: string[]; deny_out?: string[] } | null }>(base),
        this.api.json<{ entries: EgressEntry[] }>(`${base}/log`),
      ]);
      if (network === null) {
        replace(
          this.body,
          h(
            'p',
            { class: 'muted' },
            'This session has no network (create it with a "network" allow-list to give it some).',
          ),
        );
        return;
      }
      replace(
        this.body,
        h(
          'p',
          {},
          `Allowed: ${(network.allow_out ?? []).join(', ') || 'nothing'}${network.deny_out?.length ? `; denied: ${network.deny_out.join(', ')}` : ''}`,
        ),
        h(
          'div',
          { class: 'table-scroll' },
          h(
            'table',
            { id: 'egress' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ...['Time', 'Destination', 'Decision', 'Bytes out/in'].map((t) =>
                  h('th', { scope: 'col' }, t),
                ),
              ),
            ),
            h(
              'tbody',
              {},
              ...entries
                .slice(-50)
                .reverse()
                .map((e) =>
                  h(
                    'tr',
                    {},
                    h('td', {}, new Date(e.time).toLocaleTimeString()),
                    h('td', {}, `${e.method} ${e.host}:${e.port}`),
                    h(
                      'td',
                      { class: e.decision === 'allowed' ? 'ok' : 'bad' },
                      e.reason ? `${e.decision}: ${e.reason}` : e.decision,
                    ),
                    h('td', {}, `${bytes(e.bytes_out)} / ${bytes(e.bytes_in)}`),
                  ),
                ),
            ),
          ),
        ),
      );
    } catch (error) {
      replace(this.body, notice('error', `Could not read the egress log: ${errorText(error)}`));
    }
  }
}

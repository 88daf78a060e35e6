import '@xterm/xterm/css/xterm.css';
import 'uplot/dist/uPlot.min.css';
import './console.css';
import { ApiClient, ApiError } from './api-client.js';
import { errorText, h, notice, replace } from './dom.js';
import { OverviewView } from './overview-view.js';
import { ProcessPage, SessionPage } from './session-view.js';

interface View {
  element: HTMLElement;
  start(): void | Promise<void>;
  stop(): void;
}

/**
 * The console's shell: asks for the API key when the server wants one (kept in sessionStorage
 * for this tab only), then shows the page the URL's hash names.
 */
class ConsoleApp {
  private readonly api = new ApiClient(sessionStorage);
  private readonly main = h('main', { id: 'main', tabindex: -1 });
  private current: View | undefined;

  constructor(root: HTMLElement) {
    const signOut = h('button', { type: 'button', id: 'forget-key', hidden: true }, 'Forget key');
    signOut.addEventListener('click', () => {
      this.api.apiKey = undefined;
      void this.route();
    });
    if (this.api.apiKey !== undefined) signOut.hidden = false;
    replace(
      root,
      h(
        'a',
        {
          class: 'skip',
          href: '#main',
          onclick: (e: Event) => {
            e.preventDefault();
            this.main.focus();
          },
        },
        'Skip to content',
      ),
      h(
        'header',
        { class: 'top' },
        h('h1', {}, h('a', { href: '#/' }, 'sandpool console')),
        h('span', { class: 'muted', id: 'server-role' }),
        signOut,
      ),
      this.main,
    );
    window.addEventListener('hashchange', () => void this.route());
    void this.describeServer();
  }

  private async describeServer(): Promise<void> {
    try {
      const health = (await (await fetch('/health', { credentials: 'omit' })).json()) as {
        role?: string;
        worker_id?: string;
      };
      const role = document.getElementById('server-role');
      if (role)
        role.textContent =
          health.role === 'coordinator'
            ? 'coordinator (all workers)'
            : `worker ${health.worker_id ?? ''}`;
    } catch {
      // The overview says what is wrong when the API does not answer.
    }
  }

  async route(): Promise<void> {
    this.current?.stop();
    this.current = undefined;
    if (!(await this.authorized())) return;
    const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    let view: View;
    if (parts[0] === 'sessions' && parts[1] && parts[2] === 'processes' && parts[3]) {
      view = new ProcessPage(this.api, parts[1], parts[3]);
      document.title = `Process ${parts[3]} · sandpool`;
    } else if (parts[0] === 'sessions' && parts[1]) {
      view = new SessionPage(this.api, parts[1]);
      document.title = `Session ${parts[1]} · sandpool`;
    } else {
      view = new OverviewView(this.api);
      document.title = 'sandpool console';
    }
    this.current = view;
    replace(this.main, view.element);
    await view.start();
  }

  /** True when the API answers; otherwise shows the key form (401) or what went wrong. */
  private async authorized(): Promise<boolean> {
    try {
      await this.api.fetch('/v1/templates');
      document
        .getElementById('forget-key')
        ?.toggleAttribute('hidden', this.api.apiKey === undefined);
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        this.askForKey(this.api.apiKey !== undefined);
      } else {
        replace(this.main, notice('error', `The server refused the console: ${errorText(error)}`));
      }
      return false;
    }
  }

  private askForKey(wasWrong: boolean): void {
    const input = h('input', {
      id: 'api-key',
      type: 'password',
      autocomplete: 'current-password',
      required: true,
    });
    const form = h(
      'form',
      { class: 'panel key-form', 'aria-labelledby': 'key-title' },
      h('h2', { id: 'key-title' }, 'API key'),
      wasWrong
        ? notice(
            'error',
            'That key was refused. Type the key the server was started with (--api-key or SANDPOOL_API_KEY).',
          )
        : h(
            'p',
            {},
            'This server needs its API key (the one given with --api-key or SANDPOOL_API_KEY). It is kept in this tab only, until you close it.',
          ),
      h('label', { for: 'api-key' }, 'Key'),
      input,
      h('button', { type: 'submit' }, 'Open the console'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.api.apiKey = input.value;
      void this.route();
    });
    replace(this.main, form);
    input.focus();
  }
}

const root = document.getElementById('app');
if (root !== null) void new ConsoleApp(root).route();

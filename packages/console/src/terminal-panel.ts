import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { type ApiClient, seg } from './api-client.js';
import { errorText, h, notice, replace } from './dom.js';

/**
 * A shell in the session on a pseudo-terminal: xterm.js over the PTY WebSocket, sized to its box
 * and resized with the window. The shell is killed when the page leaves.
 */
export class TerminalPanel {
  readonly element = h('section', {
    class: 'panel terminal-panel',
    'aria-labelledby': 'terminal-title',
  });
  private readonly box = h('div', { class: 'terminal', id: 'terminal' });
  private readonly status = h('div', { 'aria-live': 'polite' });
  private readonly terminal = new Terminal({
    fontSize: 14,
    cursorBlink: true,
    scrollback: 2000,
    screenReaderMode: false,
  });
  private readonly fit = new FitAddon();
  private socket: WebSocket | undefined;
  private pid: number | undefined;
  private observer: ResizeObserver | undefined;
  private readonly encoder = new TextEncoder();
  private closed = false;

  constructor(
    private readonly api: ApiClient,
    private readonly sessionId: string,
  ) {
    replace(
      this.element,
      h('h2', { id: 'terminal-title' }, 'Terminal'),
      h(
        'p',
        { class: 'muted' },
        'A bash shell in the sandbox. Tab moves focus inside the terminal; press Escape then Tab to leave it.',
      ),
      this.status,
      this.box,
    );
  }

  /** Call once the element is in the document (xterm measures its box). */
  async open(): Promise<void> {
    this.terminal.loadAddon(this.fit);
    this.terminal.open(this.box);
    this.terminal.textarea?.setAttribute('aria-label', 'Terminal input');
    this.fit.fit();
    const { cols, rows } = this.terminal;
    try {
      const started = await this.api.json<{ pid: number }>(
        `/v1/sessions/${seg(this.sessionId)}/processes`,
        { method: 'POST', body: { argv: ['bash', '-i'], pty: { cols, rows } } },
      );
      this.pid = started.pid;
    } catch (error) {
      replace(this.status, notice('error', `Could not start a shell: ${errorText(error)}`));
      return;
    }
    if (this.closed) {
      void this.kill();
      return;
    }
    this.connect();
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(this.box);
    // Escape-then-Tab leaves the terminal, so keyboard users are never trapped in it.
    let escaped = false;
    this.terminal.attachCustomKeyEventHandler((event) => {
      if (event.type !== 'keydown') return true;
      if (event.key === 'Tab' && escaped) {
        escaped = false;
        return false;
      }
      escaped = event.key === 'Escape';
      return true;
    });
  }

  private connect(): void {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/v1/sessions/${seg(this.sessionId)}/processes/${this.pid}/pty`;
    const socket = new WebSocket(url, this.api.webSocketProtocols());
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.addEventListener('open', () => {
      replace(this.status);
      this.resize();
      this.terminal.focus();
    });
    socket.addEventListener('message', (event: MessageEvent<ArrayBuffer | string>) => {
      if (typeof event.data !== 'string') {
        this.terminal.write(new Uint8Array(event.data));
        return;
      }
      const message = JSON.parse(event.data) as {
        type: string;
        exit_code?: number | null;
        error?: { message: string };
      };
      if (message.type === 'exit') {
        replace(
          this.status,
          notice(
            'info',
            `The shell exited (code ${message.exit_code ?? '?'}); reload the page for a new one.`,
          ),
        );
      } else if (message.type === 'error') {
        replace(this.status, notice('error', message.error?.message ?? 'The terminal failed.'));
      }
    });
    socket.addEventListener('close', (event) => {
      if (this.closed || event.code === 1000) return;
      replace(
        this.status,
        notice(
          'error',
          `The terminal connection closed (${event.code}${event.reason ? `: ${event.reason}` : ''}). Check the session still exists, then reload the page.`,
        ),
      );
    });
    this.terminal.onData((data) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(this.encoder.encode(data));
    });
  }

  private resize(): void {
    if (this.box.clientWidth === 0) return;
    this.fit.fit();
    // As `stty size` prints it (rows then columns): for the eye and the browser test.
    this.box.dataset.size = `${this.terminal.rows} ${this.terminal.cols}`;
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(
        JSON.stringify({ type: 'resize', cols: this.terminal.cols, rows: this.terminal.rows }),
      );
    }
  }

  private async kill(): Promise<void> {
    if (this.pid === undefined) return;
    await this.api
      .fetch(`/v1/sessions/${seg(this.sessionId)}/processes/${this.pid}`, { method: 'DELETE' })
      .catch(() => undefined);
  }

  close(): void {
    this.closed = true;
    this.observer?.disconnect();
    this.socket?.close(1000, 'page left');
    void this.kill();
    this.terminal.dispose();
  }
}

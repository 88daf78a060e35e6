import { type ApiClient, seg } from './api-client.js';
import type { CodeResult } from './api-types.js';
import { errorText, h, notice, replace, actionForm } from './dom.js';

interface CodeExecution {
  results: (CodeResult & { is_main_result: boolean })[];
  stdout: string;
  stderr: string;
  error?: { name: string; value: string; traceback: string };
  execution_count: number | null;
  duration_ms: number;
}

/** A code cell run in the session's Python interpreter, with its rich results. */
export class CodePanel {
  readonly element = h('section', { class: 'panel', 'aria-labelledby': 'code-title' });
  private readonly source = h('textarea', { id: 'code-source', rows: 6, spellcheck: 'false' });
  private readonly run = h('button', { type: 'submit' }, 'Run cell');
  private readonly output = h('div', {
    class: 'cell-output',
    id: 'code-output',
    'aria-live': 'polite',
  });

  constructor(
    private readonly api: ApiClient,
    private readonly sessionId: string,
  ) {
    this.source.value =
      'import matplotlib.pyplot as plt\nplt.plot([1, 3, 2, 4])\nplt.title("hello from the sandbox")\nplt.show()';
    const form = actionForm(
      {},
      () => this.execute(),
      h('label', { for: 'code-source' }, 'Python cell (Ctrl+Enter runs it)'),
      this.source,
      this.run,
    );
    this.source.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        void this.execute();
      }
    });
    replace(this.element, h('h2', { id: 'code-title' }, 'Code'), form, this.output);
  }

  private async execute(): Promise<void> {
    this.run.disabled = true;
    replace(this.output, notice('info', 'Running…'));
    try {
      const result = await this.api.json<CodeExecution>(
        `/v1/sessions/${seg(this.sessionId)}/code`,
        {
          method: 'POST',
          body: { code: this.source.value, language: 'python' },
        },
      );
      replace(
        this.output,
        h('p', { class: 'muted' }, `[${result.execution_count ?? ' '}] ${result.duration_ms} ms`),
        result.stdout && h('pre', { class: 'stdout' }, result.stdout),
        result.stderr && h('pre', { class: 'stderr' }, result.stderr),
        ...result.results.map((r) => renderResult(r)),
        result.error &&
          h(
            'pre',
            { class: 'stderr', role: 'alert' },
            `${result.error.name}: ${result.error.value}\n${result.error.traceback}`,
          ),
      );
    } catch (error) {
      replace(this.output, notice('error', `The cell did not run: ${errorText(error)}`));
    } finally {
      this.run.disabled = false;
    }
  }
}

/**
 * One rich result, richest form first. HTML (a pandas table) goes into a sandboxed frame with no
 * scripts: it is the sandbox's output, and the sandbox is not trusted.
 */
function renderResult(result: CodeResult): HTMLElement {
  if (result.png !== undefined) {
    return h('img', {
      src: `data:image/png;base64,${result.png}`,
      alt: result.text ?? 'Image result',
    });
  }
  if (result.jpeg !== undefined) {
    return h('img', {
      src: `data:image/jpeg;base64,${result.jpeg}`,
      alt: result.text ?? 'Image result',
    });
  }
  if (result.svg !== undefined) {
    return h('img', {
      src: `data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(result.svg)))}`,
      alt: result.text ?? 'SVG result',
    });
  }
  if (result.html !== undefined) {
    return h('iframe', {
      class: 'html-result',
      sandbox: '',
      srcdoc: result.html,
      title: 'HTML result',
    });
  }
  return h('pre', {}, result.text ?? result.markdown ?? JSON.stringify(result));
}

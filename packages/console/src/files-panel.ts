import { type ApiClient, seg } from './api-client.js';
import type { FileEntry } from './api-types.js';
import { bytes, errorText, h, notice, replace, actionForm } from './dom.js';

/** A file browser over the files API: list, upload (input or drag and drop), download, delete. */
export class FilesPanel {
  readonly element = h('section', { class: 'panel', 'aria-labelledby': 'files-title' });
  private readonly pathInput = h('input', { id: 'files-path', value: '.', autocomplete: 'off' });
  private readonly rows = h('tbody');
  private readonly status = h('div', { 'aria-live': 'polite' });
  private readonly fileInput = h('input', { id: 'files-upload', type: 'file', multiple: true });
  private readonly drop = h(
    'div',
    { class: 'dropzone', id: 'files-drop' },
    'Drop files here to upload them to this directory, or ',
    h('label', { for: 'files-upload', class: 'link' }, 'choose files'),
    this.fileInput,
  );

  constructor(
    private readonly api: ApiClient,
    private readonly sessionId: string,
  ) {
    const form = actionForm(
      { class: 'inline' },
      () => this.refresh(),
      h('label', { for: 'files-path' }, 'Directory'),
      this.pathInput,
      h('button', { type: 'submit' }, 'List'),
      h('button', { type: 'button', onclick: () => this.up() }, 'Up'),
    );
    this.fileInput.addEventListener('change', () => {
      void this.upload([...(this.fileInput.files ?? [])]);
      this.fileInput.value = '';
    });
    this.drop.addEventListener('dragover', (event) => {
      event.preventDefault();
      this.drop.classList.add('over');
    });
    this.drop.addEventListener('dragleave', () => this.drop.classList.remove('over'));
    this.drop.addEventListener('drop', (event) => {
      event.preventDefault();
      this.drop.classList.remove('over');
      void this.upload([...(event.dataTransfer?.files ?? [])]);
    });
    replace(
      this.element,
      h('h2', { id: 'files-title' }, 'Files'),
      form,
      this.drop,
      this.status,
      h(
        'div',
        { class: 'table-scroll' },
        h(
          'table',
          { id: 'files' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Name', 'Size', 'Modified', ''].map((t) => h('th', { scope: 'col' }, t)),
            ),
          ),
          this.rows,
        ),
      ),
    );
  }

  private get dir(): string {
    return this.pathInput.value.trim() || '.';
  }

  private pathOf(name: string): string {
    return this.dir === '.' ? name : `${this.dir.replace(/\/$/, '')}/${name}`;
  }

  private up(): void {
    const parts = this.dir.replace(/\/$/, '').split('/');
    parts.pop();
    this.pathInput.value =
      parts.length === 0 || parts.join('/') === ''
        ? this.dir.startsWith('/')
          ? '/'
          : '.'
        : parts.join('/');
    void this.refresh();
  }

  async refresh(): Promise<void> {
    try {
      const { entries } = await this.api.json<{ entries: FileEntry[] }>(
        `/v1/sessions/${seg(this.sessionId)}/files/list?path=${seg(this.dir)}`,
      );
      entries.sort(
        (a, b) =>
          (a.type === 'directory' ? 0 : 1) - (b.type === 'directory' ? 0 : 1) ||
          a.name.localeCompare(b.name),
      );
      replace(this.rows, ...entries.map((entry) => this.row(entry)));
      if (entries.length === 0) {
        this.rows.append(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'Empty directory.')));
      }
    } catch (error) {
      replace(this.status, notice('error', `Could not list ${this.dir}: ${errorText(error)}`));
    }
  }

  private row(entry: FileEntry): HTMLTableRowElement {
    const path = this.pathOf(entry.name);
    const name =
      entry.type === 'directory'
        ? h(
            'button',
            {
              type: 'button',
              class: 'link',
              onclick: () => {
                this.pathInput.value = path;
                void this.refresh();
              },
            },
            `${entry.name}/`,
          )
        : entry.name;
    const actions = h('td', { class: 'actions' });
    if (entry.type === 'file') {
      actions.append(
        h(
          'button',
          {
            type: 'button',
            'aria-label': `Download ${entry.name}`,
            onclick: () => void this.download(path, entry.name),
          },
          'Download',
        ),
      );
    }
    if (entry.type !== 'directory') {
      actions.append(
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            'aria-label': `Delete ${entry.name}`,
            onclick: () => void this.remove(path),
          },
          'Delete',
        ),
      );
    }
    return h(
      'tr',
      { 'data-file': entry.name },
      h('td', {}, name),
      h('td', {}, entry.type === 'file' ? bytes(entry.size) : entry.type),
      h('td', {}, new Date(entry.mtime).toLocaleString()),
      actions,
    );
  }

  private async upload(files: File[]): Promise<void> {
    for (const file of files) {
      replace(this.status, notice('info', `Uploading ${file.name}…`));
      try {
        await this.api.fetch(
          `/v1/sessions/${seg(this.sessionId)}/files?path=${seg(this.pathOf(file.name))}`,
          {
            method: 'PUT',
            body: file,
          },
        );
        replace(this.status, notice('info', `Uploaded ${file.name} (${bytes(file.size)}).`));
      } catch (error) {
        replace(this.status, notice('error', `Could not upload ${file.name}: ${errorText(error)}`));
        return;
      }
    }
    await this.refresh();
  }

  /** The key travels in a header, so the download is fetched and handed over as a blob. */
  private async download(path: string, name: string): Promise<void> {
    try {
      const response = await this.api.fetch(
        `/v1/sessions/${seg(this.sessionId)}/files?path=${seg(path)}`,
      );
      const url = URL.createObjectURL(await response.blob());
      const link = h('a', { href: url, download: name });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (error) {
      replace(this.status, notice('error', `Could not download ${path}: ${errorText(error)}`));
    }
  }

  private async remove(path: string): Promise<void> {
    if (!window.confirm(`Delete ${path}?`)) return;
    try {
      await this.api.fetch(`/v1/sessions/${seg(this.sessionId)}/files?path=${seg(path)}`, {
        method: 'DELETE',
      });
      replace(this.status, notice('info', `Deleted ${path}.`));
      await this.refresh();
    } catch (error) {
      replace(this.status, notice('error', `Could not delete ${path}: ${errorText(error)}`));
    }
  }
}

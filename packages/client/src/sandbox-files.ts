import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { fileBody } from './file-body.js';
import type { HttpTransport } from './http-transport.js';
import type {
  FileData,
  FileOptions,
  ReadFileOptions,
  WriteFileOptions,
} from './sandbox-options.js';
import { guardStream, streamError } from './stream-error.js';
import type { DownloadFileResult, FileEntry, WriteFileResult } from './types.js';
import { parseFileList, parseWriteResult } from './wire.js';

/**
 * The file calls of one session (write, read, upload, download, list, remove); `Sandbox`
 * exposes them. `route` gives a path under the session, and throws once the sandbox is closed.
 */
export class SandboxFiles {
  constructor(
    private readonly transport: HttpTransport,
    private readonly route: (suffix: string) => string,
  ) {}

  async writeFile(
    path: string,
    data: FileData,
    options: WriteFileOptions,
  ): Promise<WriteFileResult> {
    const body = fileBody(data);
    const answer = await this.transport.requestJson({
      method: 'PUT',
      path: this.route('/files'),
      query: { path },
      body,
      // A known size lets the server refuse an oversized upload before it is sent.
      headers:
        options.sizeBytes === undefined
          ? undefined
          : { 'content-length': String(options.sizeBytes) },
      timeoutMs: null,
      signal: options.signal,
    });
    return parseWriteResult(answer);
  }

  async readFile(
    path: string,
    options: ReadFileOptions,
  ): Promise<Uint8Array | string | ReadableStream<Uint8Array>> {
    if (options.format === 'stream') return this.readStream(path, options);
    const bytes = await this.readBytes(path, options);
    return options.format === 'text' ? new TextDecoder().decode(bytes) : bytes;
  }

  async readStream(path: string, options: FileOptions): Promise<ReadableStream<Uint8Array>> {
    const { response, url } = await this.fetchFile(path, options.signal);
    return guardStream(this.transport, response, url, options.signal);
  }

  private async readBytes(path: string, options: FileOptions): Promise<Uint8Array> {
    const { response, url } = await this.fetchFile(path, options.signal);
    try {
      return new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      throw streamError(this.transport, error, url, options.signal);
    }
  }

  private async fetchFile(
    path: string,
    signal: AbortSignal | undefined,
  ): Promise<{ response: Response; url: string }> {
    const route = this.route('/files');
    const response = await this.transport.request({
      method: 'GET',
      path: route,
      query: { path },
      accept: 'application/octet-stream',
      timeoutMs: null,
      signal,
    });
    return { response, url: this.transport.urlFor(route, { path }) };
  }

  async uploadFile(
    localPath: string,
    remotePath: string,
    options: FileOptions,
  ): Promise<WriteFileResult> {
    const { size } = await stat(localPath);
    return this.writeFile(remotePath, createReadStream(localPath), {
      ...options,
      sizeBytes: size,
    });
  }

  /** Written beside the target and renamed when complete: the file appears whole or not at all. */
  async downloadFile(
    remotePath: string,
    localPath: string,
    options: FileOptions,
  ): Promise<DownloadFileResult> {
    const stream = await this.readStream(remotePath, options);
    const partial = `${localPath}.${randomBytes(4).toString('hex')}.partial`;
    const file = await open(partial, 'w');
    let size = 0;
    try {
      for await (const chunk of stream) {
        await file.write(chunk);
        size += chunk.byteLength;
      }
      await file.close();
      await rename(partial, localPath);
    } catch (error) {
      await file.close().catch(() => undefined);
      await rm(partial, { force: true });
      throw error;
    }
    return { path: localPath, size };
  }

  async listFiles(path: string, options: FileOptions): Promise<FileEntry[]> {
    const answer = await this.transport.requestJson({
      method: 'GET',
      path: this.route('/files/list'),
      query: { path },
      signal: options.signal,
    });
    return parseFileList(answer);
  }

  async removeFile(path: string, options: FileOptions): Promise<void> {
    await this.transport.requestJson({
      method: 'DELETE',
      path: this.route('/files'),
      query: { path },
      signal: options.signal,
    });
  }
}

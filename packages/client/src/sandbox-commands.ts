import { SandboxError } from './errors.js';
import { responseBody, type HttpTransport } from './http-transport.js';
import { readNdjson } from './ndjson.js';
import type { ExecBatchOptions, ExecOptions } from './sandbox-options.js';
import { streamError } from './stream-error.js';
import type { ExecEvent, ExecResult } from './types.js';
import { eventsFromResult, execBody, parseExecEvent, parseExecResult } from './wire.js';

const NDJSON = 'application/x-ndjson';

/**
 * The command calls of one session (`exec`, `execStream`, `execBatch`); `Sandbox` exposes them.
 * `route` gives a path under the session, and throws once the sandbox is closed.
 */
export class SandboxCommands {
  constructor(
    private readonly transport: HttpTransport,
    private readonly route: (suffix: string) => string,
  ) {}

  async exec(command: string | readonly string[], options: ExecOptions): Promise<ExecResult> {
    const { onStdout, onStderr } = options;
    if (onStdout === undefined && onStderr === undefined) {
      const answer = await this.transport.requestJson({
        method: 'POST',
        path: this.route('/exec'),
        json: execBody(command, options),
        timeoutMs: null,
        signal: options.signal,
      });
      return parseExecResult(answer);
    }
    const stdout: string[] = [];
    const stderr: string[] = [];
    for await (const event of this.execStream(command, options)) {
      switch (event.type) {
        case 'stdout':
          stdout.push(event.data);
          onStdout?.(event.data);
          break;
        case 'stderr':
          stderr.push(event.data);
          onStderr?.(event.data);
          break;
        case 'exit':
          return {
            stdout: stdout.join(''),
            stderr: stderr.join(''),
            exitCode: event.exitCode,
            durationMs: event.durationMs,
            timedOut: event.timedOut,
            truncated: event.truncated,
          };
      }
    }
    // execStream throws rather than end without an exit event.
    throw new SandboxError('invalid_response', 'exec stream ended before its exit event');
  }

  async *execStream(
    command: string | readonly string[],
    options: Omit<ExecOptions, 'onStdout' | 'onStderr'>,
  ): AsyncGenerator<ExecEvent, void, undefined> {
    const path = this.route('/exec');
    const response = await this.transport.request({
      method: 'POST',
      path,
      json: execBody(command, options),
      accept: `${NDJSON}, application/json;q=0.5`,
      timeoutMs: null,
      signal: options.signal,
    });
    const url = this.transport.urlFor(path);
    const contentType = response.headers.get('content-type') ?? '';
    const body = responseBody(response);
    if (!contentType.includes(NDJSON) || body === null) {
      let answer: unknown;
      try {
        answer = JSON.parse(await response.text()) as unknown;
      } catch (error) {
        throw streamError(this.transport, error, url, options.signal);
      }
      yield* eventsFromResult(parseExecResult(answer));
      return;
    }
    let exited = false;
    try {
      for await (const line of readNdjson(body)) {
        const event = parseExecEvent(line);
        if (event === undefined) continue;
        yield event;
        if (event.type === 'exit') exited = true;
      }
    } catch (error) {
      throw streamError(this.transport, error, url, options.signal);
    }
    if (!exited) {
      throw new SandboxError('invalid_response', `POST ${url}: the stream ended before the exit`);
    }
  }

  async execBatch(
    commands: readonly (string | readonly string[])[],
    options: ExecBatchOptions,
  ): Promise<ExecResult[]> {
    const { stopOnError = false, ...execOptions } = options;
    const results: ExecResult[] = [];
    for (const command of commands) {
      const result = await this.exec(command, execOptions);
      results.push(result);
      if (stopOnError && (result.exitCode !== 0 || result.timedOut)) break;
    }
    return results;
  }
}

import type { Execution, Result } from './code-interpreter.js';
import { clipForModel } from './model-text.js';

/**
 * A code cell's {@link Execution} as a model should read it: the error first (it is what the
 * model must act on), then stdout, stderr and each result as text. Images are described (kind
 * and size), never dumped as base64: a face that can show images (MCP) sends them alongside.
 */
export function describeExecution(execution: Execution, limitChars: number): string {
  const lines: string[] = [];
  const count = execution.executionCount === null ? '' : ` [${execution.executionCount}]`;
  const { error } = execution;
  if (error === undefined) {
    lines.push(`ok${count} (${execution.durationMs} ms)`);
  } else {
    lines.push(`error${count}: ${error.name}: ${error.value}`);
    if (error.timedOut) {
      lines.push(
        'note: the cell hit its timeout and was interrupted' +
          (error.contextRestarted
            ? '; it did not stop, so the context was restarted and its variables are gone.'
            : '; the variables defined before it are kept.'),
      );
    } else if (error.contextRestarted) {
      lines.push(
        'note: the context was restarted, its variables are gone: rerun the cells it needs.',
      );
    }
    if (error.traceback !== '') {
      lines.push(`traceback:\n${clipForModel(error.traceback, limitChars, 'traceback')}`);
    }
  }
  if (execution.truncated) {
    lines.push('note: the sandbox cut output or a result that was over its size cap.');
  }
  const stdout = execution.logs.stdout.join('');
  const stderr = execution.logs.stderr.join('');
  if (stdout !== '') lines.push(`stdout:\n${clipForModel(stdout, limitChars, 'stdout')}`);
  if (stderr !== '') lines.push(`stderr:\n${clipForModel(stderr, limitChars, 'stderr')}`);
  execution.results.forEach((result, index) => {
    const name = result.isMainResult ? 'result' : `display ${index + 1}`;
    lines.push(`${name}:\n${describeResult(result, limitChars)}`);
  });
  return lines.join('\n');
}

/** One result as text: its plain text, and a line per image or other rich format. */
export function describeResult(result: Result, limitChars: number): string {
  const parts: string[] = [];
  const images = imagesOf(result);
  for (const image of images) {
    const size = image.width === undefined ? '' : ` ${image.width}x${image.height} px`;
    parts.push(`[${image.mimeType} image${size}, ${image.bytes} bytes; not shown as text]`);
  }
  const text = result.text ?? result.markdown;
  // A figure's text is only its repr ("<Figure size 640x480 with 1 Axes>"): keep it short.
  if (text !== undefined) parts.push(clipForModel(text, limitChars, 'result'));
  else if (result.json !== undefined)
    parts.push(clipForModel(JSON.stringify(result.json), limitChars, 'result'));
  if (result.html !== undefined && text === undefined) {
    parts.push(clipForModel(result.html, limitChars, 'html result'));
  }
  if (result.truncated === true) parts.push('[over the size cap: cut or left out]');
  return parts.length === 0 ? '(no text form)' : parts.join('\n');
}

/** A result's images, decoded enough to know their size. */
export interface ResultImage {
  mimeType: 'image/png' | 'image/jpeg';
  /** Base64, as the result holds it. */
  data: string;
  bytes: number;
  width?: number;
  height?: number;
}

/** The PNG and JPEG images of a result, with a PNG's width and height read from its header. */
export function imagesOf(result: Result): ResultImage[] {
  const images: ResultImage[] = [];
  if (result.png !== undefined) {
    const head = Buffer.from(result.png.slice(0, 44), 'base64');
    const isPng = head.length >= 24 && head.toString('latin1', 12, 16) === 'IHDR';
    images.push({
      mimeType: 'image/png',
      data: result.png,
      bytes: Math.floor((result.png.length * 3) / 4),
      ...(isPng ? { width: head.readUInt32BE(16), height: head.readUInt32BE(20) } : {}),
    });
  }
  if (result.jpeg !== undefined) {
    images.push({
      mimeType: 'image/jpeg',
      data: result.jpeg,
      bytes: Math.floor((result.jpeg.length * 3) / 4),
    });
  }
  return images;
}

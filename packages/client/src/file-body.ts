import type { FileData } from './sandbox-options.js';

const encoder = new TextEncoder();

/** Turns {@link FileData} into something `fetch` sends; iterables become a pulled stream. */
export function fileBody(data: FileData): Uint8Array | Blob | ReadableStream<Uint8Array> {
  if (typeof data === 'string') return encoder.encode(data);
  if (data instanceof Uint8Array || data instanceof Blob || data instanceof ReadableStream) {
    return data;
  }
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  const iterator: AsyncIterator<Uint8Array | string> = data[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const step = await iterator.next();
        if (step.done === true) controller.close();
        else
          controller.enqueue(
            typeof step.value === 'string' ? encoder.encode(step.value) : step.value,
          );
      },
      async cancel(reason) {
        await iterator.return?.(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

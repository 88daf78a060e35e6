import type { Writable } from 'node:stream';

/**
 * Resolves when `stream` takes more writes ('drain') or can take none ever again ('close').
 * Both listeners go away whichever fires first: a long stream waits thousands of times, and a
 * listener left per wait piles up (MaxListenersExceededWarning after ten, memory after that).
 */
export function waitForDrain(stream: Writable): Promise<void> {
  if (stream.destroyed || stream.writableEnded || !stream.writableNeedDrain) {
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}

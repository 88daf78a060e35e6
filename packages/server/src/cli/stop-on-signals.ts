/**
 * SIGTERM or SIGINT stops a long-running command once: `close()` runs, then the process exits 0
 * (1 if closing failed). `doing` says what the stop does, for the log line.
 */
export function stopOnSignals(close: () => Promise<void>, doing: string): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: stopping; ${doing}...\n`);
    close().then(
      () => {
        process.stdout.write('stopped\n');
        process.exit(0);
      },
      (error: unknown) => {
        process.stderr.write(`error while stopping: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

import type { Command } from 'commander';
import { addSettingOptions, flagsBySetting } from '../config/settings-table.js';
import { WORKER_SETTINGS, loadWorkerConfig } from '../config/worker-config.js';
import { stopOnSignals } from './stop-on-signals.js';

/** `sandpool serve`: one worker on this host's Docker engine. */
export function registerServeCommand(program: Command): void {
  const serve = program
    .command('serve')
    .description('Run a worker: a warm pool of hardened sandboxes behind the HTTP API')
    .addHelpText(
      'after',
      '\nEvery flag has an environment variable (shown with its default).\n\nExamples:\n  sandpool serve\n  sandpool serve --port 5001 --pool-size 10\n  SANDPOOL_API_KEY=$(openssl rand -hex 24) sandpool serve --host 0.0.0.0',
    );
  addSettingOptions(serve, WORKER_SETTINGS);
  serve.action(async (opts: Record<string, unknown>) => {
    const config = loadWorkerConfig(flagsBySetting(opts, WORKER_SETTINGS));
    // Loaded here so the client commands start without the worker's dependencies.
    const { Worker } = await import('../worker/worker.js');
    const worker = await Worker.create(config, {
      onProgress: (line) => process.stdout.write(`${line}\n`),
    });
    const { serverBanner } = await import('./server-banner.js');
    const url = await worker.listen();
    process.stdout.write(
      serverBanner(
        `sandpool worker ${config.workerId} listening on ${url}`,
        url,
        config.apiKey !== undefined,
      ),
    );

    stopOnSignals(() => worker.close(), 'removing sandboxes');
  });
}

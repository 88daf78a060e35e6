import type { Command } from 'commander';
import { COORDINATOR_SETTINGS, loadCoordinatorConfig } from '../config/coordinator-config.js';
import { addSettingOptions, flagsBySetting } from '../config/settings-table.js';
import { stopOnSignals } from './stop-on-signals.js';

/** `sandpool coordinator`: the public API in front of many workers that register in Redis. */
export function registerCoordinatorCommand(program: Command): void {
  const command = program
    .command('coordinator')
    .description('Run a coordinator: route sessions over the workers registered in Redis')
    .addHelpText(
      'after',
      '\nEvery flag has an environment variable (shown with its default).\n\nExamples:\n  sandpool coordinator --redis redis://127.0.0.1:6379\n  sandpool serve --port 5001 --redis redis://127.0.0.1:6379 --worker-id w1\n  SANDPOOL_API_KEY=$(openssl rand -hex 24) sandpool coordinator --host 0.0.0.0 --redis redis://redis:6379',
    );
  addSettingOptions(command, COORDINATOR_SETTINGS);
  command.action(async (opts: Record<string, unknown>) => {
    const config = loadCoordinatorConfig(flagsBySetting(opts, COORDINATOR_SETTINGS));
    // Loaded here so the client commands start without Fastify, ioredis and the MCP SDK.
    const { Coordinator } = await import('../coordinator/coordinator.js');
    const coordinator = await Coordinator.create(config);
    const { serverBanner } = await import('./server-banner.js');
    const url = await coordinator.listen();
    process.stdout.write(
      serverBanner(
        `sandpool coordinator listening on ${url} (Redis ${config.redisUrl.replace(/\/\/[^@/]*@/, '//***@')})`,
        url,
        config.apiKey !== undefined,
      ),
    );

    stopOnSignals(() => coordinator.close(), 'sessions live on in the workers');
  });
}

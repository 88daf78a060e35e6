import type { Command } from 'commander';

/** `sandpool doctor`: what the host gives the sandboxes, and what it lacks. */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      'Check this host: engine, runc against known container escapes, cgroup limits, seccomp, user namespaces, gVisor',
    )
    .option('--json', 'print the checks as JSON')
    .addHelpText(
      'after',
      '\nExit code: 0 when nothing failed, 1 otherwise.\n\nExample:\n  sandpool doctor',
    )
    .action(async (options: { json?: boolean }) => {
      // Loaded here so other commands do not load the Docker client.
      const { DockerHostInspector } = await import('../runtime/docker/docker-host-inspector.js');
      const { evaluateHost } = await import('../doctor/host-checks.js');
      const results = evaluateHost(await new DockerHostInspector().inspect());
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ checks: results }, null, 2)}\n`);
      } else {
        for (const r of results)
          process.stdout.write(`${r.level.padEnd(4)}  ${r.name.padEnd(16)} ${r.detail}\n`);
      }
      if (results.some((r) => r.level === 'fail')) process.exitCode = 1;
    });
}

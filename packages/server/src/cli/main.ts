#!/usr/bin/env node
import { Command } from 'commander';
import { registerClientCommands } from './client-commands.js';
import { registerCoordinatorCommand } from './coordinator-command.js';
import { registerDoctorCommand } from './doctor-command.js';
import { registerImageCommand } from './image-command.js';
import { registerMcpCommand } from './mcp-command.js';
import { registerRunCodeCommand } from './client/run-code-command.js';
import { registerProcessCommands } from './process-commands.js';
import { registerServeCommand } from './serve-command.js';
import { registerTemplateCommand } from './template-command.js';

/** The `sandpool` command line: the worker, its image, and the client commands. */
const program = new Command('sandpool')
  .description('Pre-warmed, hardened code-execution sandboxes for AI agents')
  .showHelpAfterError()
  .version('0.1.0');

registerServeCommand(program);
registerCoordinatorCommand(program);
// Further commands register here, one line each.
registerClientCommands(program);
registerRunCodeCommand(program);
registerProcessCommands(program);
registerImageCommand(program);
registerTemplateCommand(program);
registerMcpCommand(program);
registerDoctorCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // One line a person can act on; the stack helps nobody here.
  process.stderr.write(`sandpool: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}

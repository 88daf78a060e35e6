#!/usr/bin/env node
import { Command } from 'commander';
import { registerClientCommands } from './client-commands.js';
import { registerImageCommand } from './image-command.js';
import { registerServeCommand } from './serve-command.js';

/** The `sandpool` command line: the worker, its image, and the client commands. */
const program = new Command('sandpool')
  .description('Pre-warmed, hardened code-execution sandboxes for AI agents')
  .showHelpAfterError()
  .version('0.1.0');

registerServeCommand(program);
// Further commands register here, one line each.
registerClientCommands(program);
registerImageCommand(program);

await program.parseAsync(process.argv);

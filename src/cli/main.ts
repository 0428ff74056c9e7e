#!/usr/bin/env node
// The tensorcast command line: one file per command under commands/, imported only when that command runs
// (command-list.ts), so help and light commands do not pay for the daemon's and client's dependencies.

import { Command, CommanderError } from 'commander';
import { describeError, EXIT_BAD_INPUT, exitCodeOf } from './exit-codes.js';
import { commandOf, registerStubs } from './command-list.js';

// A reader that goes away (`tensorcast ls | head`) is not an error: stop quietly, as Unix tools do.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const program = new Command();
program
  .name('tensorcast')
  .description('a distributed tensor store for LLM serving')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError(false)
  .addHelpText('after', '\nRun `tensorcast <command> --help` for the options of a command.');

try {
  const entry = commandOf(process.argv.slice(2));
  if (entry === undefined) registerStubs(program);
  else (await entry.load())(program);
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version exit 0; usage errors were already printed by commander.
    process.exitCode = error.exitCode === 0 ? 0 : EXIT_BAD_INPUT;
  } else {
    process.stderr.write(`${describeError(error)}\n`);
    process.exitCode = exitCodeOf(error);
  }
}

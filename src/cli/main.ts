#!/usr/bin/env node
// The tensorcast command line: one file per command under commands/.

import { Command, CommanderError } from 'commander';
import { describeError, EXIT_BAD_INPUT, exitCodeOf } from './exit-codes.js';
import { registerInspect } from './commands/inspect.js';
import { registerSlice } from './commands/slice.js';
import { registerServe } from './commands/serve.js';
import { registerImport } from './commands/import.js';
import { registerLs } from './commands/ls.js';
import { registerLoad } from './commands/load.js';
import { registerExport } from './commands/export.js';
import { registerDemo } from './commands/demo.js';

const program = new Command();
program
  .name('tensorcast')
  .description('a distributed tensor store for LLM serving')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError(false);
registerInspect(program);
registerSlice(program);
registerServe(program);
registerImport(program);
registerLs(program);
registerLoad(program);
registerExport(program);
registerDemo(program);

try {
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

// `tensorcast sessions ...` (docs/sessions.md "CLI"): the daemon's session KV cache: list, inspect, close,
// swap out and in, collect orphaned cold objects. One file per subcommand under sessions/.

import type { Command } from 'commander';
import { registerSessionsGc } from './sessions/gc.js';
import { registerSessionsLs } from './sessions/ls.js';
import { registerSessionsRm } from './sessions/rm.js';
import { registerSessionsStat } from './sessions/stat.js';
import { registerSessionsSwapIn } from './sessions/swap-in.js';
import { registerSessionsSwapOut } from './sessions/swap-out.js';

/** Registers `sessions ls|stat|rm|swap-out|swap-in|gc`. */
export function registerSessions(program: Command): void {
  const group = program.command('sessions').description("the daemon's session KV cache (needs a daemon started with --sessions-cold)");
  registerSessionsLs(group);
  registerSessionsStat(group);
  registerSessionsRm(group);
  registerSessionsSwapOut(group);
  registerSessionsSwapIn(group);
  registerSessionsGc(group);
}

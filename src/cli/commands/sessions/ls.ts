// `tensorcast sessions ls [--json]`: the sessions of the daemon's metadata store (with a shared store, those
// of every daemon on it), their size and residency on this daemon.

import type { Command } from 'commander';
import { clientFrom, withClientFlags, type ClientFlags } from '../../client-flags.js';
import { formatSessionList } from './format.js';
import { listAllSessions, sessionsOf } from './remote.js';

interface LsFlags extends ClientFlags {
  readonly json?: boolean;
}

/** Registers `sessions ls`. */
export function registerSessionsLs(group: Command): void {
  withClientFlags(
    group
      .command('ls')
      .description('list sessions (id, model, tokens, size, entries, residency here, last change) and a total')
      .option('--json', 'print one JSON object {sessions: [...]}'),
  ).action(async (flags: LsFlags) => {
    const client = await clientFrom(flags);
    try {
      const list = await listAllSessions(sessionsOf(client));
      process.stdout.write(flags.json === true ? `${JSON.stringify({ sessions: list })}\n` : formatSessionList(list));
    } finally {
      await client.close();
    }
  });
}

// `tensorcast sessions stat ID [--entries] [--json]`: one session's geometry hash, tokens, size, residency on
// this daemon and version; --entries adds its entries (token ranges, cold objects, hot holders).

import type { Command } from 'commander';
import { clientFrom, withClientFlags, type ClientFlags } from '../../client-flags.js';
import { formatSessionStat } from './format.js';
import { sessionEntries, sessionsOf } from './remote.js';

interface StatFlags extends ClientFlags {
  readonly json?: boolean;
  readonly entries?: boolean;
}

/** Registers `sessions stat`. */
export function registerSessionsStat(group: Command): void {
  withClientFlags(
    group
      .command('stat <id>')
      .description("a session's geometry hash, tokens, size, entries, residency on this daemon and version (exit 2 when unknown)")
      .option('--entries', "also list the session's entries")
      .option('--json', 'print one JSON object (with --entries: and entryList)'),
  ).action(async (id: string, flags: StatFlags) => {
    const client = await clientFrom(flags);
    try {
      const stat = await sessionsOf(client).stat(id);
      const entries = flags.entries === true ? await sessionEntries(client, id) : undefined;
      process.stdout.write(
        flags.json === true
          ? `${JSON.stringify(entries === undefined ? stat : { ...stat, entryList: entries })}\n`
          : formatSessionStat(stat, entries),
      );
    } finally {
      await client.close();
    }
  });
}

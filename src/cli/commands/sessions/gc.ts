// `tensorcast sessions gc [--json]`: deletes cold objects under `sessions/` that no session references and
// that are older than the grace period (left by a crash between a cold write and its metadata update).

import type { Command } from 'commander';
import { formatBytes } from '../../../core/strings.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../../client-flags.js';
import { sessionsOf } from './remote.js';

interface GcFlags extends ClientFlags {
  readonly json?: boolean;
}

/** Registers `sessions gc`. */
export function registerSessionsGc(group: Command): void {
  withClientFlags(
    group
      .command('gc')
      .description('delete cold objects no session references (left by a crash mid-append or mid-truncate)')
      .option('--json', 'print the GcResult as JSON'),
  ).action(async (flags: GcFlags) => {
    const client = await clientFrom(flags);
    try {
      const r = await sessionsOf(client).gc();
      process.stdout.write(
        flags.json === true
          ? `${JSON.stringify(r)}\n`
          : `scanned ${r.scanned} object${r.scanned === 1 ? '' : 's'}, deleted ${r.deleted} (${formatBytes(r.deletedBytes)})\n`,
      );
    } finally {
      await client.close();
    }
  });
}

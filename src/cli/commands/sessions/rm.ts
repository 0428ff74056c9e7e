// `tensorcast sessions rm ID...`: closes sessions, freeing every tier (the record, the cold objects, hot
// copies). Exit 2 when a session is unknown (0 with --force), 1 when one is in use by another writer.

import type { Command } from 'commander';
import { isTensorcastError } from '../../../core/errors.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../../client-flags.js';
import { describeError, exitCodeOf } from '../../exit-codes.js';
import { sessionsOf } from './remote.js';

interface RmFlags extends ClientFlags {
  readonly force?: boolean;
}

/** Registers `sessions rm`. */
export function registerSessionsRm(group: Command): void {
  withClientFlags(
    group
      .command('rm <ids...>')
      .description('close sessions and free every tier; one line per session (exit 2 when one is unknown, 1 when one is in use)')
      .option('--force', 'an unknown session is not an error'),
  ).action(async (ids: string[], flags: RmFlags) => {
    const client = await clientFrom(flags);
    let code = 0;
    try {
      const api = sessionsOf(client);
      for (const id of ids) {
        try {
          await api.close(id);
          process.stdout.write(`closed ${id}\n`);
        } catch (error) {
          if (flags.force === true && isTensorcastError(error, 'TC_ERR_NOT_FOUND')) {
            process.stdout.write(`not found ${id} (ignored)\n`);
            continue;
          }
          process.stderr.write(`${describeError(error)}\n`);
          const c = exitCodeOf(error);
          code = code === 1 || c === 1 ? 1 : Math.max(code, c);
        }
      }
    } finally {
      await client.close();
    }
    process.exitCode = code;
  });
}

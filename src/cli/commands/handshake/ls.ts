// `tensorcast handshake ls`: placeholder of the seams commit, replaced by its implementation.

import type { Command } from 'commander';
import { tcError } from '../../../core/errors.js';

/** Registers `handshake ls`. */
export function registerHandshakeLs(group: Command): void {
  group
    .command('ls')
    .description('(not built yet)')
    .action(() => {
      throw tcError('TC_ERR_INTERNAL', 'handshake ls is not built yet');
    });
}

// `tensorcast handshake get`: placeholder of the seams commit, replaced by its implementation.

import type { Command } from 'commander';
import { tcError } from '../../../core/errors.js';

/** Registers `handshake get`. */
export function registerHandshakeGet(group: Command): void {
  group
    .command('get')
    .description('(not built yet)')
    .action(() => {
      throw tcError('TC_ERR_INTERNAL', 'handshake get is not built yet');
    });
}

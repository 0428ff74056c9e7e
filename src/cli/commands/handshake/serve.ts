// `tensorcast handshake serve`: placeholder of the seams commit, replaced by its implementation.

import type { Command } from 'commander';
import { tcError } from '../../../core/errors.js';

/** Registers `handshake serve`. */
export function registerHandshakeServe(group: Command): void {
  group
    .command('serve')
    .description('(not built yet)')
    .action(() => {
      throw tcError('TC_ERR_INTERNAL', 'handshake serve is not built yet');
    });
}

// `tensorcast handshake publish`: placeholder of the seams commit, replaced by its implementation.

import type { Command } from 'commander';
import { tcError } from '../../../core/errors.js';

/** Registers `handshake publish`. */
export function registerHandshakePublish(group: Command): void {
  group
    .command('publish')
    .description('(not built yet)')
    .action(() => {
      throw tcError('TC_ERR_INTERNAL', 'handshake publish is not built yet');
    });
}

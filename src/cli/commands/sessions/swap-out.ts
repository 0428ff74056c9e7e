// `tensorcast sessions swap-out ID`: drops the session's hot copies on this daemon (its bytes stay in the
// cold tier, where every acknowledged byte already is).

import type { Command } from 'commander';
import { registerSwap } from './swap.js';

/** Registers `sessions swap-out`. */
export function registerSessionsSwapOut(group: Command): void {
  registerSwap(group, 'swap-out', "drop a session's hot copies on this daemon (its bytes stay in the cold tier)", 'out', (api, id) =>
    api.swapOut(id),
  );
}

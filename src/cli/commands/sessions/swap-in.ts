// `tensorcast sessions swap-in ID`: copies the session from the cold tier into this daemon's hot tier
// (CRC32C checked), swapping idle sessions out to make room; TC_ERR_BUDGET when it cannot fit at all.

import type { Command } from 'commander';
import { registerSwap } from './swap.js';

/** Registers `sessions swap-in`. */
export function registerSessionsSwapIn(group: Command): void {
  registerSwap(
    group,
    'swap-in',
    "copy a session from the cold tier into this daemon's hot tier (exit 1 with TC_ERR_BUDGET when it cannot fit)",
    'in',
    (api, id) => api.swapIn(id),
  );
}

// The swap commands' shared action: one line `swapped <direction> ID: N bytes in T ms`, or JSON.

import type { Command } from 'commander';
import { formatBytes } from '../../../core/strings.js';
import type { SwapResult } from '../../../client/index.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../../client-flags.js';
import { sessionsOf, type RemoteSessionsApi } from './remote.js';

interface SwapFlags extends ClientFlags {
  readonly json?: boolean;
}

/** Registers a swap subcommand calling `swap` on the daemon's cache. */
export function registerSwap(
  group: Command,
  name: string,
  description: string,
  direction: 'in' | 'out',
  swap: (api: RemoteSessionsApi, id: string) => Promise<SwapResult>,
): void {
  withClientFlags(group.command(`${name} <id>`).description(description).option('--json', 'print the SwapResult as JSON')).action(
    async (id: string, flags: SwapFlags) => {
      const client = await clientFrom(flags);
      try {
        const r = await swap(sessionsOf(client), id);
        process.stdout.write(
          flags.json === true
            ? `${JSON.stringify(r)}\n`
            : r.bytes === 0
              ? `${id} already ${direction === 'in' ? 'hot' : 'cold'} here\n`
              : `swapped ${direction} ${id}: ${formatBytes(r.bytes)} (${r.bytes} bytes) in ${r.durationMs.toFixed(1)} ms\n`,
        );
      } finally {
        await client.close();
      }
    },
  );
}

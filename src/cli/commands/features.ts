// `tensorcast features stat STORE_ID [--json]` (docs/api.md, "Feature store"): a feature store's samples,
// generations, resident bytes and pending frees. On the daemon (default) through the SDK: the namespace's
// counters plus a listing of its manifests and objects; with --connector URL, on that connector.

import type { Command } from 'commander';
import { formatBytes } from '../../core/strings.js';
import { openFeatureStore, type FeatureStats } from '../../client/index.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';

interface FeatureFlags extends ClientFlags {
  readonly storeToken?: string;
  readonly connector?: string;
  readonly json?: boolean;
}

/** The store token the flags (or TENSORCAST_STORE_TOKEN) give. */
function storeToken(flags: FeatureFlags): string | undefined {
  const token = flags.storeToken ?? process.env['TENSORCAST_STORE_TOKEN'];
  return token === undefined || token === '' ? undefined : token;
}

/** The human form of a store's stats: one `name value` line each. */
export function formatFeatureStats(s: FeatureStats): string {
  const max = s.maxResidentBytes === null ? 'no limit' : `max ${formatBytes(s.maxResidentBytes)}`;
  const lines: [string, string][] = [
    ['store', `${s.storeId} (${s.backend})`],
    ['samples', String(s.samples)],
    ['generations', `${s.generations}${s.generations > s.samples ? ` (${s.generations - s.samples} not freed yet)` : ''}`],
    ['objects', String(s.objects)],
    ['resident', `${formatBytes(s.residentBytes)} (${s.residentBytes} bytes), ${max}`],
    [
      'pending frees',
      s.backendPendingFrees === null ? String(s.pendingFrees) : `${s.backendPendingFrees} (daemon: bytes a read still holds)`,
    ],
  ];
  return lines.map(([k, v]) => `${k.padEnd(14)}${v}\n`).join('');
}

/** Registers `features stat`. */
export function registerFeatures(program: Command): void {
  const features = program.command('features').description('feature stores: per-sample tensors');
  withClientFlags(
    features
      .command('stat <storeId>')
      .description("a feature store's samples, generations, resident bytes and pending frees")
      .option('--store-token <token>', "the store's token (its namespace's store token on the daemon)")
      .option('--connector <url>', 'the store lives on this connector (file://, redis://, s3://) instead of the daemon')
      .option('--json', 'print one JSON object'),
  )
    .addHelpText('after', '\n  TENSORCAST_STORE_TOKEN  the store token (when --store-token is not given)')
    .action(async (storeId: string, flags: FeatureFlags) => {
      let stats: FeatureStats;
      if (flags.connector !== undefined) {
        const store = await openFeatureStore(flags.connector, storeId);
        try {
          stats = await store.stat();
        } finally {
          await store.close();
        }
      } else {
        const client = await clientFrom(flags);
        try {
          const token = storeToken(flags);
          stats = await client.features(storeId, token === undefined ? {} : { token }).stat();
        } finally {
          await client.close();
        }
      }
      process.stdout.write(flags.json === true ? `${JSON.stringify(stats)}\n` : formatFeatureStats(stats));
    });
}

// `tensorcast ls [--json]`: keys, artifact ids, sizes and replicas (tier and view of each; a lazy
// artifact's connector URL, credentials redacted).

import type { Command } from 'commander';
import { printable } from '../../core/keys.js';
import { formatBytes } from '../../core/strings.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';
import { formatTable } from './inspect.js';

/** Registers `ls`. */
export function registerLs(program: Command): void {
  withClientFlags(
    program.command('ls').description('list keys, artifacts, sizes and replicas').option('--json', 'print one JSON object'),
  ).action(async (flags: ClientFlags & { json?: boolean }) => {
    const client = await clientFrom(flags);
    try {
      const artifacts = await client.listArtifacts();
      if (flags.json === true) {
        process.stdout.write(`${JSON.stringify({ artifacts })}\n`);
        return;
      }
      const rows: string[][] = [['KEY', 'VERSION', 'ARTIFACT', 'SIZE', 'TENSORS', 'REPLICAS']];
      for (const a of artifacts) {
        // Which view each replica holds: `canonical` (the whole artifact) or the start of its view id.
        // A lazy artifact's bytes are in its connector (the URL as the daemon redacted it).
        const held = a.replicas.map((r) => `${r.tier}:${r.viewId === null ? 'canonical' : r.viewId.slice(0, 12)}`);
        if (a.lazy !== undefined) held.unshift(`lazy:${a.lazy.source}`);
        const replicas = held.join(',') || '-';
        const keys = a.keys.length > 0 ? a.keys : [{ key: '-', version: 0 }];
        for (const k of keys)
          rows.push([
            k.key,
            k.version === 0 ? '-' : String(k.version),
            a.artifactId,
            formatBytes(a.totalBytes),
            String(a.tensorCount),
            replicas,
          ]);
      }
      // Keys bound before the key grammar may hold control characters: never print them raw.
      process.stdout.write(formatTable(rows.map((r) => r.map(printable))));
    } finally {
      await client.close();
    }
  });
}

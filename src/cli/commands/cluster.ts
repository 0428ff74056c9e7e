// `tensorcast cluster ls [--json]`: the daemons of the cluster (id, address, alive, last heartbeat) and,
// per artifact, the replicas by daemon and kind, as the daemon's catalog lists them.

import type { Command } from 'commander';
import { printable } from '../../core/keys.js';
import { formatBytes } from '../../core/strings.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';
import { formatTable } from './inspect.js';

/** How long ago `at` (Unix ms) was, for people: "3s ago". */
function ago(at: number, now: number): string {
  const s = Math.max(0, Math.round((now - at) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** Registers `cluster` with its subcommand `ls`. */
export function registerCluster(program: Command): void {
  const cluster = program.command('cluster').description('the cluster: daemons and replicas');
  withClientFlags(
    cluster
      .command('ls')
      .description('list daemons (alive, last heartbeat) and replicas by daemon and kind')
      .option('--json', 'print one JSON object'),
  ).action(async (flags: ClientFlags & { json?: boolean }) => {
    const client = await clientFrom(flags);
    try {
      const info = await client.cluster();
      if (flags.json === true) {
        process.stdout.write(`${JSON.stringify(info)}\n`);
        return;
      }
      const now = Date.now();
      const daemons: string[][] = [['DAEMON', 'CONTROL', 'DATA', 'STATE', 'ALIVE', 'HEARTBEAT']];
      for (const d of info.daemons) {
        daemons.push([
          d.daemonId + (d.daemonId === info.self ? ' (this)' : ''),
          d.controlUrl,
          d.dataAddress,
          d.state,
          d.alive ? 'yes' : 'no',
          ago(d.heartbeatAt, now),
        ]);
      }
      process.stdout.write(`catalog ${info.catalog.url} (${info.catalog.status})\n\n`);
      process.stdout.write(formatTable(daemons.map((r) => r.map(printable))));
      const replicas: string[][] = [['ARTIFACT', 'KEYS', 'DAEMON', 'KIND', 'VIEW', 'TIER', 'SIZE', 'STATE', 'FETCHES']];
      for (const a of info.artifacts) {
        const keys = a.keys.join(',') || '-';
        if (a.replicas.length === 0) replicas.push([a.artifactId, keys, '-', '-', '-', '-', '-', '-', '-']);
        for (const r of a.replicas) {
          replicas.push([
            a.artifactId,
            keys,
            r.daemonId,
            r.kind,
            r.viewId === null ? '-' : r.viewId.slice(0, 12),
            r.tier,
            formatBytes(r.bytes),
            r.state,
            String(r.activeFetches),
          ]);
        }
      }
      process.stdout.write(`\n${formatTable(replicas.map((r) => r.map(printable)))}`);
    } finally {
      await client.close();
    }
  });
}

// `tensorcast handshake ls [--json]`: the engines a handshake listener serves: incarnation, hash, TP size,
// live ranks, payload bytes and the earliest expiry.

import type { Command } from 'commander';
import type { EngineSummary } from '../../../protocol/http/handshake.js';
import { handshakeClientFrom, withHandshakeClientFlags, type HandshakeClientFlags } from './handshake-client-flags.js';

interface LsFlags extends HandshakeClientFlags {
  readonly json?: boolean;
}

/** Registers `handshake ls`. */
export function registerHandshakeLs(group: Command): void {
  withHandshakeClientFlags(
    group
      .command('ls')
      .description('list the engines a handshake listener serves')
      .option('--json', 'print the listing as JSON (`{"engines": [...]}` as the listener answers it)'),
  ).action(async (flags: LsFlags) => {
    const hs = await handshakeClientFrom(flags);
    try {
      const engines = await hs.engines();
      if (flags.json === true) process.stdout.write(`${JSON.stringify({ engines }, null, 2)}\n`);
      else process.stdout.write(table(engines));
    } finally {
      await hs.close();
    }
  });
}

function table(engines: readonly EngineSummary[]): string {
  if (engines.length === 0) return 'no engines\n';
  const rows = [['ENGINE', 'INCARNATION', 'HASH', 'TP', 'RANKS', 'BYTES', 'EXPIRES']];
  for (const e of engines) {
    const ranks = e.ranks.map((r) => `${r.tpRank}/${r.dpRank}`).join(',');
    const bytes = e.ranks.reduce((sum, r) => sum + r.bytes, 0);
    const expires = Math.min(...e.ranks.map((r) => r.expiresAtMs));
    rows.push([
      e.engineId,
      e.incarnation,
      e.compatibilityHash,
      String(e.tpSize),
      ranks,
      String(bytes),
      Number.isFinite(expires) ? new Date(expires).toISOString() : '-',
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

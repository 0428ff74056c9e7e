// Which export entries pressure eviction takes to make room: expired idle entries first, then the least
// recently used idle ones. Never a pending entry, one with active fetches, or one already retiring.

import type { ExportRecord } from './export-entry.js';

/**
 * The entries to retire so that at least `needBytes` leave the budget, in eviction order, or undefined
 * when every evictable entry together frees less (then nothing should be evicted at all).
 *
 * @example const victims = pickExportVictims(records.values(), admitted + bytes - budget, now);
 */
export function pickExportVictims(records: Iterable<ExportRecord>, needBytes: number, now: number): ExportRecord[] | undefined {
  if (needBytes <= 0) return [];
  const idle = [...records].filter((r) => r.state === 'ready' && r.activeFetches === 0);
  const expired = idle.filter((r) => r.expiresAt <= now).sort((a, b) => a.expiresAt - b.expiresAt || a.lastAccessAt - b.lastAccessAt);
  const live = idle.filter((r) => r.expiresAt > now).sort((a, b) => a.lastAccessAt - b.lastAccessAt || a.generation - b.generation);
  const victims: ExportRecord[] = [];
  let freed = 0;
  for (const r of [...expired, ...live]) {
    if (freed >= needBytes) break;
    victims.push(r);
    freed += r.bytes;
  }
  return freed >= needBytes ? victims : undefined;
}

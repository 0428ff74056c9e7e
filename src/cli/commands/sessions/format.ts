// The human forms of the sessions commands' answers.

import { formatBytes } from '../../../core/strings.js';
import type { SessionEntry, SessionStat } from '../../../client/index.js';
import { formatTable } from '../inspect.js';

/** A Unix-ms time as ISO 8601 (seconds). */
function when(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `sessions ls`: one row per session, then a total line. */
export function formatSessionList(list: readonly SessionStat[]): string {
  const rows: string[][] = [['SESSION', 'MODEL', 'TOKENS', 'SIZE', 'ENTRIES', 'RESIDENCY', 'UPDATED']];
  for (const s of list) {
    rows.push([s.sessionId, s.modelId, String(s.tokens), formatBytes(s.bytes), String(s.entries), s.residency, when(s.updatedAtMs)]);
  }
  const total = list.reduce((n, s) => n + s.bytes, 0);
  const hot = list.reduce((n, s) => n + s.hotBytes, 0);
  return `${formatTable(rows)}${list.length} session${list.length === 1 ? '' : 's'}, ${formatBytes(total)} (${total} bytes), ${formatBytes(hot)} hot here\n`;
}

/** `sessions stat`: one `name value` line each, then the entries when given. */
export function formatSessionStat(s: SessionStat, entries?: readonly SessionEntry[]): string {
  const lines: [string, string][] = [
    ['session', s.sessionId],
    ['model', s.modelId],
    ['geometry', s.geometryHash],
    ['tokens', String(s.tokens)],
    ['size', `${formatBytes(s.bytes)} (${s.bytes} bytes)`],
    ['entries', String(s.entries)],
    ['residency', `${s.residency} (${formatBytes(s.hotBytes)} hot here)`],
    ['version', String(s.version)],
    ['created', when(s.createdAtMs)],
    ['updated', when(s.updatedAtMs)],
  ];
  let out = lines.map(([k, v]) => `${k.padEnd(11)}${v}\n`).join('');
  if (entries !== undefined && entries.length > 0) {
    const rows: string[][] = [['TOKENS', 'SIZE', 'CRC32C', 'HOT', 'URI']];
    for (const e of entries) {
      rows.push([
        `${e.tokenOffset}-${e.tokenOffset + e.tokenLength}`,
        formatBytes(e.bytes),
        e.crc32c.toString(16).padStart(8, '0'),
        e.hot === undefined ? '-' : e.hot.holder,
        e.uri,
      ]);
    }
    out += `\n${formatTable(rows)}`;
  }
  return out;
}

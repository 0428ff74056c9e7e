// One remembered rank without its payload, as the stores list them, and the engine summary built from them
// (live ranks only, ordered by tp rank then dp rank), the same for every backend.

import type { EngineSummary } from '../../protocol/http/handshake.js';

/** A remembered rank's facts (no payload). */
export interface RankRow {
  readonly tpRank: number;
  readonly dpRank: number;
  readonly incarnation: string;
  readonly compatibilityHash: string;
  readonly tpSize: number;
  readonly bytes: number;
  readonly publishedAtMs: number;
  readonly expiresAtMs: number;
}

/** The summary of an engine's live ranks at `nowMs` (the store's clock), or undefined when none is live. */
export function summarizeRows(engineId: string, rows: readonly RankRow[], nowMs: number): EngineSummary | undefined {
  const live = rows.filter((row) => row.expiresAtMs > nowMs).sort((a, b) => a.tpRank - b.tpRank || a.dpRank - b.dpRank);
  const first = live[0];
  if (first === undefined) return undefined;
  return {
    engineId,
    incarnation: first.incarnation,
    compatibilityHash: first.compatibilityHash,
    tpSize: first.tpSize,
    ranks: live.map(({ tpRank, dpRank, bytes, publishedAtMs, expiresAtMs }) => ({ tpRank, dpRank, bytes, publishedAtMs, expiresAtMs })),
  };
}

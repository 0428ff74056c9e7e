// The publish rules every handshake store applies the same way: limit checks, the errors of a refused
// publish, rank keys and engine ordering. Redis and PostgreSQL re-decide the same rules atomically inside
// their own script or transaction; the errors are built here from what those report.

import { tcError, type TensorcastError } from '../../core/errors.js';
import { MAX_HANDSHAKE_RANK } from '../../protocol/http/handshake.js';
import type { PublishLimits, PublishRecord } from './handshake-store.js';

/** `tp/dp`: one rank's key inside an engine. */
export const rankKey = (tpRank: number, dpRank: number): string => `${tpRank}/${dpRank}`;

/** Engine ids are ASCII ([A-Za-z0-9._:@+-]): code-unit order is byte order, as PostgreSQL's "C" collation. */
export function compareEngineIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Checks the limits a listener passes.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for a ttl that is not a positive integer of ms, or a negative byte cap.
 */
export function checkPublishLimits(limits: PublishLimits): void {
  if (!Number.isSafeInteger(limits.ttlMs) || limits.ttlMs < 1) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `handshake ttl must be a positive integer of ms, not ${String(limits.ttlMs)}`);
  }
  if (!Number.isSafeInteger(limits.maxEngineBytes) || limits.maxEngineBytes < 0) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `maxEngineBytes must be a non-negative integer, not ${String(limits.maxEngineBytes)}`);
  }
}

/**
 * Checks a record's ranks (the listener validated the rest).
 *
 * @throws TC_ERR_INVALID_ARGUMENT for a rank that is not an integer in 0..4095.
 */
export function checkRecordRanks(record: PublishRecord): void {
  for (const [name, value] of [
    ['tpRank', record.tpRank],
    ['dpRank', record.dpRank],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value >= MAX_HANDSHAKE_RANK) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `${name} must be an integer in 0..${MAX_HANDSHAKE_RANK - 1}, not ${String(value)}`);
    }
  }
}

/** TC_ERR_INCOMPATIBLE: the live incarnation already carries another hash. */
export function incompatiblePublish(record: PublishRecord, liveHash: string): TensorcastError {
  return tcError(
    'TC_ERR_INCOMPATIBLE',
    `engine ${record.engineId} incarnation ${record.incarnation} is live with compatibility hash ${liveHash}; a publish with ${record.compatibilityHash} is refused (restart the engine with a new incarnation)`,
    { details: { engineId: record.engineId, incarnation: record.incarnation, expected: liveHash, actual: record.compatibilityHash } },
  );
}

/** TC_ERR_TOO_LARGE: the engine's live payload bytes would pass the cap. */
export function engineTooLarge(record: PublishRecord, otherBytes: number, cap: number): TensorcastError {
  const total = otherBytes + record.payload.byteLength;
  return tcError(
    'TC_ERR_TOO_LARGE',
    `engine ${record.engineId} would hold ${total} payload bytes with rank ${rankKey(record.tpRank, record.dpRank)}, above the cap of ${cap}`,
    { details: { engineId: record.engineId, bytes: total, cap } },
  );
}

/** A rank a store still remembers (live or within the grace period), as a publish decision needs it. */
export interface RememberedRank {
  readonly tpRank: number;
  readonly dpRank: number;
  readonly incarnation: string;
  readonly compatibilityHash: string;
  readonly bytes: number;
  readonly expiresAtMs: number;
}

/** What a publish does with the engine's remembered ranks. */
export interface PublishDecision {
  /** True: the remembered ranks stay (same incarnation and hash); false: they are all dropped first. */
  readonly keep: boolean;
  readonly replacedIncarnation: string | null;
}

/**
 * Decides a publish against the engine's remembered ranks at `nowMs` (the rules of docs/handshake.md): the
 * live incarnation with another hash is refused; a new incarnation (or, with nothing live, another hash)
 * drops the remembered ranks; the engine's live bytes with this payload must stay within the cap. The Redis
 * script applies the same rules in Lua.
 *
 * @throws TC_ERR_INCOMPATIBLE; TC_ERR_TOO_LARGE.
 */
export function decidePublish(
  remembered: readonly RememberedRank[],
  record: PublishRecord,
  limits: PublishLimits,
  nowMs: number,
): PublishDecision {
  // Every remembered rank of an engine shares one incarnation and hash: a publish changing either drops them.
  const stored = remembered[0];
  const live = remembered.filter((rank) => rank.expiresAtMs > nowMs);
  const liveHead = live[0];
  if (liveHead !== undefined && liveHead.incarnation === record.incarnation && liveHead.compatibilityHash !== record.compatibilityHash) {
    throw incompatiblePublish(record, liveHead.compatibilityHash);
  }
  const keep = stored !== undefined && stored.incarnation === record.incarnation && stored.compatibilityHash === record.compatibilityHash;
  const otherBytes = keep
    ? live.filter((rank) => rank.tpRank !== record.tpRank || rank.dpRank !== record.dpRank).reduce((sum, rank) => sum + rank.bytes, 0)
    : 0;
  if (otherBytes + record.payload.byteLength > limits.maxEngineBytes) throw engineTooLarge(record, otherBytes, limits.maxEngineBytes);
  return { keep, replacedIncarnation: stored !== undefined && stored.incarnation !== record.incarnation ? stored.incarnation : null };
}

// Moving sessions between the tiers of one cache instance. Swap in: copy entries cold -> hot (CRC32C checked),
// then one metadata update marks them hot. Swap out: one metadata update clears this instance's marks, then
// the hot bytes are freed. Room is made before bytes are added: idle sessions are swapped out in LRU order
// until the new bytes fit (docs/sessions.md "Tiers and the LRU").

import { allSettledOrThrow } from '../core/async.js';
import { isTensorcastError } from '../core/errors.js';
import type { Connector } from '../connectors/connector.js';
import { readEntryInto } from './cold-objects.js';
import type { HotTier } from './hot-tier.js';
import type { SessionMetaStore } from './meta/session-meta-store.js';
import { Mutex } from './mutex.js';
import type { SessionLru, SessionSlot } from './session-lru.js';
import type { SessionEntry, SessionLease, SessionRecord } from './session-types.js';

/** Cold reads in flight during one swap-in. */
const SWAP_IN_CONCURRENCY = 4;
/** How long making room waits for another operation making room. */
const ROOM_WAIT_MS = 120_000;

/** The counters swaps move (SessionCacheStats). */
export interface SwapCounters {
  swapsIn: number;
  swapsOut: number;
  swapInBytes: number;
  swapOutBytes: number;
  leaseConflicts: number;
}

/** A finished swap, as `SessionCacheOptions.onSwap` hears it (the daemon's swap-duration histogram). */
export interface SwapEvent {
  readonly direction: 'in' | 'out';
  readonly sessionId: string;
  readonly bytes: number;
  readonly durationMs: number;
  /** 'lru': made room for other bytes; 'request': swapIn/swapOut, or a read or append of a cold session. */
  readonly reason: 'lru' | 'request';
}

/** What the swapper works with: the parts of one cache instance. */
export interface SwapParts {
  readonly owner: string;
  readonly meta: SessionMetaStore;
  readonly cold: Connector;
  readonly hot: HotTier;
  readonly lru: SessionLru;
  readonly leaseTtlMs: number;
  readonly counters: SwapCounters;
  readonly onSwap?: ((event: SwapEvent) => void) | undefined;
}

/** Bytes of a record's entries. */
export const recordBytes = (record: SessionRecord): number => record.entries.reduce((sum, e) => sum + e.bytes, 0);

/** `entry` without a hot mark. */
function unmarked(entry: SessionEntry): SessionEntry {
  return {
    tokenOffset: entry.tokenOffset,
    tokenLength: entry.tokenLength,
    connector: entry.connector,
    uri: entry.uri,
    bytes: entry.bytes,
    crc32c: entry.crc32c,
  };
}

/** The entries of `record` that have no hot copy in `slot`. */
export const missingEntries = (slot: SessionSlot, record: SessionRecord): SessionEntry[] =>
  record.entries.filter((e) => !slot.copies.has(e.uri));

/**
 * `entries` with this instance's hot marks set from the copies in `slot` (other holders' marks stay): the
 * marks every metadata update writes.
 */
export function markEntries(entries: readonly SessionEntry[], slot: SessionSlot, owner: string): SessionEntry[] {
  return entries.map((e) => {
    const hereNow = slot.copies.has(e.uri);
    const markedHere = e.hot?.holder === owner;
    if (hereNow === markedHere) return e;
    return hereNow ? { ...unmarked(e), hot: { holder: owner } } : unmarked(e);
  });
}

/** `entries` without this instance's hot marks (what a swap-out writes). */
export function clearOwnMarks(entries: readonly SessionEntry[], owner: string): SessionEntry[] {
  return entries.map((e) => {
    return e.hot?.holder === owner ? unmarked(e) : e;
  });
}

/** True when `a` and `b` carry the same marks (nothing to write). */
export const sameMarks = (a: readonly SessionEntry[], b: readonly SessionEntry[]): boolean =>
  a.every((e, i) => e.hot?.holder === b[i]?.hot?.holder);

/**
 * The swapping of one cache instance.
 *
 * @example
 * if (await swapper.makeRoom(bytes, slot)) await swapper.copyIn(slot, record.sessionId, missing);
 */
export class Swapper {
  private readonly roomLock = new Mutex();

  constructor(private readonly parts: SwapParts) {}

  /**
   * Reserves `bytes` in the hot tier, swapping out idle sessions (least recently used first, never `forSlot`)
   * until they fit. False (nothing reserved) when they cannot fit: larger than the budget, or the rest is
   * pinned by operations in flight.
   */
  async makeRoom(bytes: number, forSlot: SessionSlot): Promise<boolean> {
    const { hot, lru } = this.parts;
    if (bytes > hot.budgetBytes) return false;
    if (hot.tryReserve(bytes)) return true;
    // One room-maker at a time, so that two never pick the same victims.
    await this.roomLock.lock(ROOM_WAIT_MS, 'making room in the hot tier');
    try {
      while (!hot.tryReserve(bytes)) {
        const victim = lru.takeVictim(forSlot);
        if (victim === undefined) return false;
        await this.evictLocked(victim);
      }
      return true;
    } finally {
      this.roomLock.unlock();
    }
  }

  /**
   * Swaps out a session whose lock the caller took: clears this instance's marks in one metadata update
   * (best effort: marks are advisory, and the bytes must be freed whatever the store says), then frees its
   * hot bytes. Unlocks the slot.
   */
  private async evictLocked(slot: SessionSlot): Promise<void> {
    const started = performance.now();
    try {
      await this.clearMarks(slot.sessionId).catch(() => undefined);
    } finally {
      // A read that pinned the session meanwhile may still copy from its buffers: those are not reused.
      const freed = this.parts.lru.dropAll(slot, slot.pins === 0);
      this.parts.counters.swapsOut++;
      this.parts.counters.swapOutBytes += freed;
      const durationMs = performance.now() - started;
      this.parts.onSwap?.({ direction: 'out', sessionId: slot.sessionId, bytes: freed, durationMs, reason: 'lru' });
      slot.lock.unlock();
      this.parts.lru.forgetIfUnused(slot);
    }
  }

  /** Clears this instance's marks on a session under a lease of its own (nothing when none is set). */
  private async clearMarks(sessionId: string): Promise<void> {
    const { meta, owner } = this.parts;
    const seen = await meta.get(sessionId);
    if (seen === undefined || !seen.entries.some((e) => e.hot?.holder === owner)) return;
    const lease = await this.acquire(sessionId);
    try {
      const record = await meta.get(sessionId);
      if (record === undefined) return;
      const entries = clearOwnMarks(record.entries, owner);
      if (!sameMarks(entries, record.entries)) await meta.update(lease, record.version, { entries, tokens: record.tokens });
    } finally {
      await this.release(lease);
    }
  }

  /**
   * Copies `entries` from the cold tier into hot copies of `slot`, their bytes already reserved by the caller
   * (in total). On failure the reservation of the entries not copied is given back.
   *
   * @throws TC_ERR_CHECKSUM (a damaged cold copy); the connector's errors
   */
  async copyIn(slot: SessionSlot, entries: readonly SessionEntry[]): Promise<number> {
    const { cold, hot, lru } = this.parts;
    if (entries.length === 0) return 0;
    const started = performance.now();
    let pending = entries.reduce((sum, e) => sum + e.bytes, 0);
    const total = pending;
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!failed && next < entries.length) {
        const entry = entries[next++]!;
        try {
          const buf = hot.allocate(entry.bytes);
          await readEntryInto(cold, slot.sessionId, entry, buf);
          pending -= entry.bytes;
          lru.addCopy(slot, entry.uri, buf);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    };
    try {
      // Settles every worker before answering: no read lands after a failure was reported.
      await allSettledOrThrow(Array.from({ length: Math.min(SWAP_IN_CONCURRENCY, entries.length) }, worker));
    } catch (error) {
      hot.release(pending);
      throw error;
    }
    this.parts.counters.swapsIn++;
    this.parts.counters.swapInBytes += total;
    const durationMs = performance.now() - started;
    this.parts.onSwap?.({ direction: 'in', sessionId: slot.sessionId, bytes: total, durationMs, reason: 'request' });
    return total;
  }

  /**
   * Takes the session's lease for this instance.
   *
   * @throws TC_ERR_CONFLICT (counted) when another instance holds it; TC_ERR_NOT_FOUND
   */
  async acquire(sessionId: string): Promise<SessionLease> {
    try {
      return await this.parts.meta.acquire(sessionId, this.parts.owner, this.parts.leaseTtlMs);
    } catch (error) {
      if (isTensorcastError(error, 'TC_ERR_CONFLICT')) this.parts.counters.leaseConflicts++;
      throw error;
    }
  }

  /** Gives the lease up (errors ignored: an unreleased lease expires by its TTL). */
  async release(lease: SessionLease): Promise<void> {
    await this.parts.meta.release(lease).catch(() => undefined);
  }
}

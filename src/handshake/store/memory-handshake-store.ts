// The in-memory handshake store: one listener's published ranks in a map, expiry by Date.now(). The default
// when no catalog is configured; a restarted listener starts empty (publishers re-publish on 404/410).

import { tcError } from '../../core/errors.js';
import type { EngineSummary, RankSummary } from '../../protocol/http/handshake.js';
import {
  DEFAULT_EXPIRED_GRACE_MS,
  type EngineHead,
  type HandshakeStore,
  type HandshakeStoreOptions,
  type PublishLimits,
  type PublishRecord,
  type PublishResult,
  type RankLookup,
  type StoredRank,
} from './handshake-store.js';
import { checkPublishLimits, checkRecordRanks, compareEngineIds, engineTooLarge, incompatiblePublish, rankKey } from './store-rules.js';

/** Options of the memory store: the grace period, and the clock (tests). */
export interface MemoryHandshakeStoreOptions extends HandshakeStoreOptions {
  /** Milliseconds since the epoch; Date.now by default. */
  readonly now?: () => number;
}

interface Entry extends StoredRank {
  readonly tpRank: number;
  readonly dpRank: number;
}

/**
 * A `HandshakeStore` in this process's memory. Every method runs synchronously to completion, so each one
 * is atomic with respect to the others.
 *
 * @example const store = new MemoryHandshakeStore(); await store.publish(record, { ttlMs: 60_000, maxEngineBytes: 64 << 20 });
 */
export class MemoryHandshakeStore implements HandshakeStore {
  readonly kind = 'memory';
  readonly #engines = new Map<string, Map<string, Entry>>();
  readonly #graceMs: number;
  readonly #now: () => number;
  #closed = false;

  constructor(options: MemoryHandshakeStoreOptions = {}) {
    this.#graceMs = options.expiredGraceMs ?? DEFAULT_EXPIRED_GRACE_MS;
    this.#now = options.now ?? Date.now;
  }

  head(engineId: string): Promise<EngineHead | undefined> {
    this.#open();
    const live = this.#live(engineId, this.#now());
    const first = live[0];
    return Promise.resolve(
      first === undefined ? undefined : { incarnation: first.incarnation, compatibilityHash: first.compatibilityHash },
    );
  }

  publish(record: PublishRecord, limits: PublishLimits): Promise<PublishResult> {
    this.#open();
    checkPublishLimits(limits);
    checkRecordRanks(record);
    const now = this.#now();
    const ranks = this.#remembered(record.engineId, now);
    const key = rankKey(record.tpRank, record.dpRank);
    // Every remembered rank of an engine shares one incarnation and one hash (older ones are dropped).
    const stored = ranks.values().next().value;
    const live = [...ranks.values()].filter((entry) => entry.expiresAtMs > now);
    const liveHead = live[0];
    if (liveHead !== undefined && liveHead.incarnation === record.incarnation && liveHead.compatibilityHash !== record.compatibilityHash) {
      throw incompatiblePublish(record, liveHead.compatibilityHash);
    }
    const keep = stored !== undefined && stored.incarnation === record.incarnation && stored.compatibilityHash === record.compatibilityHash;
    const replacedIncarnation = stored !== undefined && stored.incarnation !== record.incarnation ? stored.incarnation : null;
    const otherBytes = keep
      ? live.filter((entry) => rankKey(entry.tpRank, entry.dpRank) !== key).reduce((sum, e) => sum + e.payload.byteLength, 0)
      : 0;
    if (otherBytes + record.payload.byteLength > limits.maxEngineBytes) {
      throw engineTooLarge(record, otherBytes, limits.maxEngineBytes);
    }
    if (!keep) ranks.clear();
    const expiresAtMs = now + limits.ttlMs;
    ranks.set(key, {
      tpRank: record.tpRank,
      dpRank: record.dpRank,
      incarnation: record.incarnation,
      compatibilityHash: record.compatibilityHash,
      tpSize: record.tpSize,
      payload: Uint8Array.prototype.slice.call(record.payload),
      publishedAtMs: now,
      expiresAtMs,
    });
    this.#engines.set(record.engineId, ranks);
    return Promise.resolve({ expiresAtMs, replacedIncarnation });
  }

  rank(engineId: string, tpRank: number, dpRank: number): Promise<RankLookup> {
    this.#open();
    const now = this.#now();
    const entry = this.#engines.get(engineId)?.get(rankKey(tpRank, dpRank));
    if (entry === undefined || entry.expiresAtMs + this.#graceMs <= now) return Promise.resolve({ state: 'missing' });
    if (entry.expiresAtMs <= now) {
      return Promise.resolve({ state: 'expired', incarnation: entry.incarnation, expiredAtMs: entry.expiresAtMs });
    }
    return Promise.resolve({ state: 'live', rank: storedRank(entry) });
  }

  renew(engineId: string, incarnation: string, ttlMs: number): Promise<{ renewed: number; expiresAtMs: number }> {
    this.#open();
    const now = this.#now();
    const ranks = this.#engines.get(engineId);
    const expiresAtMs = now + ttlMs;
    let renewed = 0;
    for (const [key, entry] of ranks ?? []) {
      if (entry.incarnation !== incarnation || entry.expiresAtMs <= now) continue;
      ranks?.set(key, { ...entry, expiresAtMs });
      renewed += 1;
    }
    return Promise.resolve({ renewed, expiresAtMs: renewed === 0 ? 0 : expiresAtMs });
  }

  remove(engineId: string, incarnation?: string): Promise<number> {
    this.#open();
    const ranks = this.#remembered(engineId, this.#now());
    let removed = 0;
    for (const [key, entry] of ranks) {
      if (incarnation !== undefined && entry.incarnation !== incarnation) continue;
      ranks.delete(key);
      removed += 1;
    }
    if (ranks.size === 0) this.#engines.delete(engineId);
    return Promise.resolve(removed);
  }

  engine(engineId: string): Promise<EngineSummary | undefined> {
    this.#open();
    return Promise.resolve(summarize(engineId, this.#live(engineId, this.#now())));
  }

  engines(): Promise<EngineSummary[]> {
    this.#open();
    const now = this.#now();
    const out: EngineSummary[] = [];
    for (const engineId of [...this.#engines.keys()].sort(compareEngineIds)) {
      const summary = summarize(engineId, this.#live(engineId, now));
      if (summary !== undefined) out.push(summary);
    }
    return Promise.resolve(out);
  }

  sweep(): Promise<void> {
    this.#open();
    const now = this.#now();
    for (const engineId of [...this.#engines.keys()]) this.#remembered(engineId, now);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#engines.clear();
    return Promise.resolve();
  }

  /** The engine's ranks not yet forgotten (live or within the grace period); forgets the others. */
  #remembered(engineId: string, now: number): Map<string, Entry> {
    const ranks = this.#engines.get(engineId) ?? new Map<string, Entry>();
    for (const [key, entry] of ranks) {
      if (entry.expiresAtMs + this.#graceMs <= now) ranks.delete(key);
    }
    if (ranks.size === 0) this.#engines.delete(engineId);
    return ranks;
  }

  #live(engineId: string, now: number): Entry[] {
    return [...(this.#engines.get(engineId)?.values() ?? [])].filter((entry) => entry.expiresAtMs > now);
  }

  #open(): void {
    if (this.#closed) throw tcError('TC_ERR_SHUTTING_DOWN', 'the handshake store is closed');
  }
}

function storedRank(entry: Entry): StoredRank {
  const { incarnation, compatibilityHash, tpSize, payload, publishedAtMs, expiresAtMs } = entry;
  return { incarnation, compatibilityHash, tpSize, payload, publishedAtMs, expiresAtMs };
}

function summarize(engineId: string, live: readonly Entry[]): EngineSummary | undefined {
  const first = live[0];
  if (first === undefined) return undefined;
  const ranks: RankSummary[] = live
    .map((entry) => ({
      tpRank: entry.tpRank,
      dpRank: entry.dpRank,
      bytes: entry.payload.byteLength,
      publishedAtMs: entry.publishedAtMs,
      expiresAtMs: entry.expiresAtMs,
    }))
    .sort((a, b) => a.tpRank - b.tpRank || a.dpRank - b.dpRank);
  return { engineId, incarnation: first.incarnation, compatibilityHash: first.compatibilityHash, tpSize: first.tpSize, ranks };
}

// The in-memory handshake store: one listener's published ranks in a map, expiry by Date.now(). The default
// when no catalog is configured; a restarted listener starts empty (publishers re-publish on 404/410).

import { tcError } from '../../core/errors.js';
import type { EngineSummary } from '../../protocol/http/handshake.js';
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
import { summarizeRows } from './rank-rows.js';
import { checkPublishLimits, checkRecordRanks, compareEngineIds, decidePublish, rankKey } from './store-rules.js';

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
    return this.#run((now) => {
      const first = this.#live(engineId, now)[0];
      return first === undefined ? undefined : { incarnation: first.incarnation, compatibilityHash: first.compatibilityHash };
    });
  }

  publish(record: PublishRecord, limits: PublishLimits): Promise<PublishResult> {
    return this.#run((now) => {
      checkPublishLimits(limits);
      checkRecordRanks(record);
      const ranks = this.#remembered(record.engineId, now);
      const remembered = [...ranks.values()].map((entry) => ({ ...entry, bytes: entry.payload.byteLength }));
      const { keep, replacedIncarnation } = decidePublish(remembered, record, limits, now);
      if (!keep) ranks.clear();
      const expiresAtMs = now + limits.ttlMs;
      ranks.set(rankKey(record.tpRank, record.dpRank), {
        tpRank: record.tpRank,
        dpRank: record.dpRank,
        incarnation: record.incarnation,
        compatibilityHash: record.compatibilityHash,
        tpSize: record.tpSize,
        // A copy: the caller's buffer may be reused.
        payload: Uint8Array.prototype.slice.call(record.payload),
        publishedAtMs: now,
        expiresAtMs,
      });
      this.#engines.set(record.engineId, ranks);
      return { expiresAtMs, replacedIncarnation };
    });
  }

  rank(engineId: string, tpRank: number, dpRank: number): Promise<RankLookup> {
    return this.#run((now): RankLookup => {
      const entry = this.#engines.get(engineId)?.get(rankKey(tpRank, dpRank));
      if (entry === undefined || entry.expiresAtMs + this.#graceMs <= now) return { state: 'missing' };
      if (entry.expiresAtMs <= now) return { state: 'expired', incarnation: entry.incarnation, expiredAtMs: entry.expiresAtMs };
      return { state: 'live', rank: storedRank(entry) };
    });
  }

  renew(engineId: string, incarnation: string, ttlMs: number): Promise<{ renewed: number; expiresAtMs: number }> {
    return this.#run((now) => {
      checkPublishLimits({ ttlMs, maxEngineBytes: 0 });
      const ranks = this.#engines.get(engineId) ?? new Map<string, Entry>();
      const expiresAtMs = now + ttlMs;
      let renewed = 0;
      for (const [key, entry] of ranks) {
        if (entry.incarnation !== incarnation || entry.expiresAtMs <= now) continue;
        ranks.set(key, { ...entry, expiresAtMs });
        renewed += 1;
      }
      return { renewed, expiresAtMs: renewed === 0 ? 0 : expiresAtMs };
    });
  }

  remove(engineId: string, incarnation?: string): Promise<number> {
    return this.#run((now) => {
      const ranks = this.#remembered(engineId, now);
      let removed = 0;
      for (const [key, entry] of ranks) {
        if (incarnation !== undefined && entry.incarnation !== incarnation) continue;
        ranks.delete(key);
        removed += 1;
      }
      if (ranks.size === 0) this.#engines.delete(engineId);
      return removed;
    });
  }

  engine(engineId: string): Promise<EngineSummary | undefined> {
    return this.#run((now) => summarize(engineId, this.#live(engineId, now), now));
  }

  engines(): Promise<EngineSummary[]> {
    return this.#run((now) => {
      const out: EngineSummary[] = [];
      for (const engineId of [...this.#engines.keys()].sort(compareEngineIds)) {
        const summary = summarize(engineId, this.#live(engineId, now), now);
        if (summary !== undefined) out.push(summary);
      }
      return out;
    });
  }

  sweep(): Promise<void> {
    return this.#run((now) => {
      for (const engineId of [...this.#engines.keys()]) this.#remembered(engineId, now);
    });
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

  /** Runs `fn` at the current time as one step; what it throws becomes the rejection. */
  #run<T>(fn: (nowMs: number) => T): Promise<T> {
    // A throw inside the executor rejects the promise.
    return new Promise<T>((resolve) => {
      if (this.#closed) throw tcError('TC_ERR_SHUTTING_DOWN', 'the handshake store is closed');
      resolve(fn(this.#now()));
    });
  }
}

function storedRank(entry: Entry): StoredRank {
  const { incarnation, compatibilityHash, tpSize, payload, publishedAtMs, expiresAtMs } = entry;
  return { incarnation, compatibilityHash, tpSize, payload, publishedAtMs, expiresAtMs };
}

function summarize(engineId: string, live: readonly Entry[], nowMs: number): EngineSummary | undefined {
  return summarizeRows(
    engineId,
    live.map((entry) => ({ ...entry, bytes: entry.payload.byteLength })),
    nowMs,
  );
}

// The session KV cache (docs/sessions.md): sessions in an LRU over a hot tier with a byte budget, written
// through to a cold connector, their metadata in a pluggable store under per-session leases. One instance per
// process (embedded) or per daemon; several instances on a shared store and cold tier continue each other's
// sessions.

import { randomUUID } from 'node:crypto';
import { tcError } from '../core/errors.js';
import type { Connector } from '../connectors/connector.js';
import { createConnector } from '../connectors/create-connector.js';
import { collectGarbage } from './gc.js';
import { checkGeometry, geometryHash } from './geometry.js';
import { HotTier } from './hot-tier.js';
import { openSessionMetaStore } from './meta/open-session-meta-store.js';
import type { SessionMetaStore } from './meta/session-meta-store.js';
import type {
  AppendResult,
  CreateSessionOptions,
  OpenRead,
  PendingAppend,
  ReadResult,
  SessionCacheEngine,
  SessionOpOptions,
  TokenRange,
} from './session-cache-api.js';
import { checkHash, checkId, checkInto, checkRange, checkTokenCount, mustExist, statOf } from './session-checks.js';
import { SessionLru, type SessionSlot } from './session-lru.js';
import { SessionWriter } from './session-writes.js';
import { fillRange, streamRange, vanished } from './session-reads.js';
import type { GcResult, SessionCacheStats, SessionEntry, SessionLease, SessionRecord, SessionStat, SwapResult } from './session-types.js';
import { clearOwnMarks, markEntries, missingEntries, recordBytes, sameMarks, Swapper, type SwapCounters, type SwapEvent } from './swap.js';

/** Options of {@link createSessionCache}. */
export interface SessionCacheOptions {
  /** The hot tier: memory with a byte budget. */
  readonly hot: { readonly budgetBytes: number };
  /** The cold tier: a connector or its URL (`file:///dir`, `redis://...`, `s3://...`). */
  readonly cold: Connector | string;
  /** The metadata store or its URL (`memory`, `sqlite:///path`, `redis://...`, `postgres://...`). */
  readonly meta: SessionMetaStore | string;
  /** This instance's id in leases and hot marks (the daemon passes its id); default a random one. */
  readonly owner?: string;
  /** Lease of one operation on a session, ms (default 30000). */
  readonly leaseTtlMs?: number;
  /** gc spares unreferenced objects younger than this, ms (default 600000: appends in flight elsewhere). */
  readonly gcGraceMs?: number;
  /** How long an operation waits for another one on the same session in this instance, ms (default 60000). */
  readonly lockTimeoutMs?: number;
  /** How long `shutdown` waits for operations running here, ms (default 10000). */
  readonly shutdownTimeoutMs?: number;
  /** Hears every finished swap (metrics); must not throw. */
  readonly onSwap?: (event: SwapEvent) => void;
}

const DEFAULT_LEASE_TTL_MS = 30_000;
const DEFAULT_GC_GRACE_MS = 600_000;
const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

const positiveMs = (value: number | undefined, fallback: number, name: string): number => {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0)
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${name} must be a non-negative integer of ms (got ${String(value)})`);
  return value;
};

/**
 * Opens a session cache: an embedded one for an engine in this process, or the daemon's.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for bad options or a malformed connector URL; TC_ERR_CONFIG for a bad
 *   metadata URL; TC_ERR_BACKEND when a store cannot be reached
 * @example
 * const cache = await createSessionCache({ hot: { budgetBytes: 8 << 30 }, cold: 'file:///var/kv', meta: 'sqlite:///var/kv/sessions.db' });
 * const s = await cache.create({ geometry: { modelId: 'llama-3-8b', layers: 32, kvHeads: 8, headDim: 128, dtype: 'BF16', tokensPerPage: 16 } });
 * await cache.append(s.sessionId, 0, kv);
 */
export async function createSessionCache(options: SessionCacheOptions): Promise<SessionCache> {
  if (typeof options !== 'object' || options === null || typeof options.hot !== 'object' || options.hot === null) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', 'createSessionCache needs { hot: { budgetBytes }, cold, meta }');
  }
  const hot = new HotTier(options.hot.budgetBytes);
  const owned: { close(): Promise<void> }[] = [];
  try {
    const cold = typeof options.cold === 'string' ? await createConnector(options.cold) : options.cold;
    if (typeof options.cold === 'string') owned.push(cold);
    const meta = typeof options.meta === 'string' ? await openSessionMetaStore(options.meta) : options.meta;
    if (typeof options.meta === 'string') owned.push(meta);
    return new SessionCache(hot, cold, meta, options, owned);
  } catch (error) {
    for (const o of owned) await o.close().catch(() => undefined);
    throw error;
  }
}

/**
 * The embedded session cache; also the daemon's engine (zero-copy `prepareAppend` / `openRead`).
 *
 * @example
 * const pending = await cache.prepareAppend(id, tokens, bytes);
 * socketBytesInto(pending.dest);
 * await pending.commit();
 */
export class SessionCache implements SessionCacheEngine {
  /** This instance's id in leases and hot marks. */
  readonly owner: string;
  private readonly lru: SessionLru;
  private readonly swapper: Swapper;
  private readonly counters: SwapCounters & { hits: number; misses: number } = {
    swapsIn: 0,
    swapsOut: 0,
    swapInBytes: 0,
    swapOutBytes: 0,
    leaseConflicts: 0,
    hits: 0,
    misses: 0,
  };
  private readonly leaseTtlMs: number;
  private readonly gcGraceMs: number;
  private readonly lockTimeoutMs: number;
  private readonly shutdownTimeoutMs: number;
  private readonly onSwap: ((event: SwapEvent) => void) | undefined;
  private readonly startedAtMs = Date.now();
  private readonly writer: SessionWriter;
  private closed = false;

  /** Use {@link createSessionCache}. */
  constructor(
    private readonly hot: HotTier,
    private readonly cold: Connector,
    private readonly meta: SessionMetaStore,
    options: SessionCacheOptions,
    private readonly owned: readonly { close(): Promise<void> }[] = [],
  ) {
    this.owner = options.owner ?? `cache-${randomUUID()}`;
    if (typeof this.owner !== 'string' || this.owner.length === 0)
      throw tcError('TC_ERR_INVALID_ARGUMENT', 'owner must be a non-empty string');
    this.leaseTtlMs = positiveMs(options.leaseTtlMs, DEFAULT_LEASE_TTL_MS, 'leaseTtlMs');
    this.gcGraceMs = positiveMs(options.gcGraceMs, DEFAULT_GC_GRACE_MS, 'gcGraceMs');
    this.lockTimeoutMs = positiveMs(options.lockTimeoutMs, DEFAULT_LOCK_TIMEOUT_MS, 'lockTimeoutMs');
    this.shutdownTimeoutMs = positiveMs(options.shutdownTimeoutMs, DEFAULT_SHUTDOWN_TIMEOUT_MS, 'shutdownTimeoutMs');
    this.onSwap = options.onSwap;
    this.lru = new SessionLru(hot);
    this.swapper = new Swapper({
      owner: this.owner,
      meta,
      cold,
      hot,
      lru: this.lru,
      leaseTtlMs: this.leaseTtlMs,
      counters: this.counters,
      onSwap: this.onSwap,
    });
    this.writer = new SessionWriter({
      owner: this.owner,
      meta,
      cold,
      hot,
      lru: this.lru,
      swapper: this.swapper,
      counters: this.counters,
      lockTimeoutMs: this.lockTimeoutMs,
      load: (sessionId, expectHash) => this.record(sessionId, expectHash),
      checkOpen: () => this.checkOpen(),
    });
  }

  async create(options: CreateSessionOptions): Promise<SessionStat> {
    this.checkOpen();
    if (typeof options !== 'object' || options === null) throw tcError('TC_ERR_INVALID_ARGUMENT', 'create needs { geometry, sessionId? }');
    const sessionId = options.sessionId ?? randomUUID();
    checkId(sessionId);
    const geometry = checkGeometry(options.geometry);
    const record = await this.meta.create(sessionId, geometry, geometryHash(geometry));
    return statOf(record, this.lru);
  }

  async append(sessionId: string, tokenOffset: number, kv: Uint8Array, options: SessionOpOptions = {}): Promise<AppendResult> {
    if (!(kv instanceof Uint8Array)) throw tcError('TC_ERR_INVALID_ARGUMENT', 'append needs the KV bytes as a Uint8Array');
    const prepared = await this.writer.prepare(sessionId, tokenOffset, kv.length, options);
    return this.writer.commit(prepared, kv, options);
  }

  async prepareAppend(sessionId: string, tokenOffset: number, size: number, options: SessionOpOptions = {}): Promise<PendingAppend> {
    const prepared = await this.writer.prepare(sessionId, tokenOffset, size, options);
    let dest: Buffer;
    let staged = 0;
    try {
      if (prepared.hotDest !== undefined) dest = prepared.hotDest;
      else {
        // A cold-only append (the session cannot be hot) lands in a buffer outside the hot tier: those in
        // flight together stay within the hot budget (one alone may be larger), so clients cannot make the
        // daemon allocate without bound.
        if (this.stagingBytes > 0 && this.stagingBytes + size > this.hot.budgetBytes) {
          throw tcError(
            'TC_ERR_BUDGET',
            `session ${sessionId}: cold-only appends in flight already hold ${this.stagingBytes} bytes; ${size} more would pass the hot budget of ${this.hot.budgetBytes}`,
            { details: { stagingBytes: this.stagingBytes, size, budgetBytes: this.hot.budgetBytes } },
          );
        }
        dest = Buffer.allocUnsafeSlow(size);
        staged = size;
        this.stagingBytes += staged;
      }
    } catch (error) {
      // The session is held (lock, lease, pin): let it go, or its next append waits for the lock timeout.
      await this.writer.finish(prepared);
      throw error;
    }
    const unstage = (): void => {
      this.stagingBytes -= staged;
      staged = 0;
    };
    return {
      dest,
      commit: () => this.writer.commit(prepared, dest, options).finally(unstage),
      abort: () => {
        unstage();
        void this.writer.finish(prepared);
      },
    };
  }

  /** Bytes of cold-only appends in flight (buffers outside the hot tier). */
  private stagingBytes = 0;

  async read(sessionId: string, range: TokenRange, options: SessionOpOptions & { readonly into: Uint8Array }): Promise<ReadResult> {
    checkId(sessionId);
    if (typeof options !== 'object' || options === null)
      throw tcError('TC_ERR_INVALID_ARGUMENT', 'a read needs options.into, a Uint8Array');
    return this.pinned(sessionId, async (slot) => {
      const { record, bytes, hit } = await this.openRange(slot, range, options, options.into);
      let current = record;
      for (let attempt = 0; ; attempt++) {
        try {
          await fillRange(this.cold, slot, current, range, options.into);
          return { sessionId, bytes, hit };
        } catch (error) {
          if (attempt > 0 || !vanished(error)) throw error;
          current = await this.record(sessionId, options.expectHash);
          checkRange(current, range);
        }
      }
    });
  }

  async openRead(sessionId: string, range: TokenRange, options: SessionOpOptions = {}): Promise<OpenRead> {
    checkId(sessionId);
    this.checkOpen();
    const slot = this.lru.pin(sessionId);
    try {
      const { record, bytes, hit } = await this.openRange(slot, range, options, undefined);
      let closed = false;
      return {
        bytes,
        hit,
        chunks: () => streamRange(this.cold, slot, record, range, () => this.record(sessionId, options.expectHash)),
        close: () => {
          if (closed) return;
          closed = true;
          this.lru.unpin(slot);
        },
      };
    } catch (error) {
      this.lru.unpin(slot);
      throw error;
    }
  }

  async truncate(sessionId: string, tokenEnd: number, options: SessionOpOptions = {}): Promise<SessionStat> {
    checkId(sessionId);
    checkTokenCount(tokenEnd, 'tokenEnd');
    return this.exclusive(sessionId, `truncate session '${sessionId}'`, options, async (slot, lease) => {
      const record = await this.record(sessionId, options.expectHash);
      if (tokenEnd > record.tokens) {
        throw tcError('TC_ERR_SOURCE_RANGE', `session '${sessionId}' holds ${record.tokens} tokens; cannot truncate to ${tokenEnd}`, {
          details: { sessionId, tokenEnd, tokens: record.tokens },
        });
      }
      if (tokenEnd === record.tokens) return statOf(record, this.lru);
      const keep = record.entries.filter((e) => e.tokenOffset + e.tokenLength <= tokenEnd);
      const gone = record.entries.filter((e) => e.tokenOffset + e.tokenLength > tokenEnd);
      const cut = gone.find((e) => e.tokenOffset < tokenEnd);
      let prefix: SessionEntry | undefined;
      if (cut !== undefined) prefix = await this.writer.writePrefix(slot, record, cut, tokenEnd);
      let updated: SessionRecord;
      try {
        const entries = markEntries(prefix === undefined ? keep : [...keep, prefix], slot, this.owner);
        updated = await this.meta.update(lease, record.version, { entries, tokens: tokenEnd });
      } catch (error) {
        if (prefix !== undefined) await this.writer.discard(slot, prefix.uri, error);
        throw error;
      } finally {
        if (prefix !== undefined) this.writer.doneWriting(prefix.uri);
      }
      // Old objects go only after the update: a reader of the old record retries from the new one.
      for (const e of gone) this.lru.dropCopy(slot, e.uri);
      await this.writer.deleteObjects(gone);
      return statOf(updated, this.lru);
    });
  }

  async close(sessionId: string, options: SessionOpOptions = {}): Promise<void> {
    checkId(sessionId);
    await this.exclusive(sessionId, `close session '${sessionId}'`, options, async (slot, lease) => {
      await this.record(sessionId, options.expectHash);
      const removed = mustExist(sessionId, await this.meta.remove(sessionId, lease));
      this.lru.dropAll(slot);
      await this.writer.deleteObjects(removed.entries);
    });
  }

  async list(options: { readonly after?: string; readonly limit?: number } = {}): Promise<SessionStat[]> {
    this.checkOpen();
    const records = await this.meta.list(options);
    return records.map((r) => statOf(r, this.lru));
  }

  async stat(sessionId: string): Promise<SessionStat> {
    checkId(sessionId);
    this.checkOpen();
    return statOf(await this.record(sessionId, undefined), this.lru);
  }

  async swapOut(sessionId: string): Promise<SwapResult> {
    checkId(sessionId);
    const started = performance.now();
    return this.exclusive(sessionId, `swap out session '${sessionId}'`, {}, async (slot, lease) => {
      if (slot.pins > 1) {
        throw tcError('TC_ERR_CONFLICT', `session '${sessionId}' is in use here (a read is running); swap it out when it is idle`, {
          details: { sessionId, reason: 'in_use' },
        });
      }
      const record = await this.record(sessionId, undefined);
      const entries = clearOwnMarks(record.entries, this.owner);
      if (!sameMarks(entries, record.entries)) await this.meta.update(lease, record.version, { entries, tokens: record.tokens });
      // Only this operation pins the session: no reader holds a view of its buffers.
      const bytes = this.lru.dropAll(slot, true);
      if (bytes > 0) {
        this.counters.swapsOut++;
        this.counters.swapOutBytes += bytes;
        this.onSwap?.({ direction: 'out', sessionId, bytes, durationMs: performance.now() - started, reason: 'request' });
      }
      return { sessionId, bytes, durationMs: performance.now() - started };
    });
  }

  async swapIn(sessionId: string): Promise<SwapResult> {
    checkId(sessionId);
    const started = performance.now();
    return this.exclusive(sessionId, `swap in session '${sessionId}'`, {}, async (slot, lease) => {
      const record = await this.record(sessionId, undefined);
      this.lru.dropExcept(slot, new Set(record.entries.map((e) => e.uri)));
      const missing = missingEntries(slot, record);
      const bytes = recordBytes(record);
      const missingBytes = bytes - slot.hotBytes;
      if (missing.length > 0) {
        const budget = this.hot.budgetBytes;
        if (bytes > budget) {
          throw tcError(
            'TC_ERR_BUDGET',
            `session '${sessionId}' holds ${bytes} bytes, more than the hot budget of ${budget}: it is served from cold`,
            {
              details: { sessionId, bytes, budgetBytes: budget },
            },
          );
        }
        if (!(await this.swapper.makeRoom(missingBytes, slot))) {
          throw tcError(
            'TC_ERR_BUDGET',
            `no room for session '${sessionId}' (${missingBytes} bytes): the hot tier is held by sessions in use`,
            {
              details: { sessionId, bytes: missingBytes, budgetBytes: budget, hotBytes: this.hot.bytes },
            },
          );
        }
        await this.swapper.copyIn(slot, missing);
        await this.writeMarks(slot, lease, record);
      }
      this.lru.touch(slot);
      return { sessionId, bytes: missing.length > 0 ? missingBytes : 0, durationMs: performance.now() - started };
    });
  }

  async gc(): Promise<GcResult> {
    this.checkOpen();
    const spared = this.writer.beginGc();
    try {
      return await collectGarbage({
        cold: this.cold,
        meta: this.meta,
        graceMs: this.gcGraceMs,
        startedAtMs: this.startedAtMs,
        protectedKeys: spared,
      });
    } finally {
      this.writer.endGc();
    }
  }

  stats(): Promise<SessionCacheStats> {
    const c = this.counters;
    return Promise.resolve({
      hotBytes: this.hot.bytes,
      hotBudgetBytes: this.hot.budgetBytes,
      hotSessions: this.lru.hotSessions,
      swapsIn: c.swapsIn,
      swapsOut: c.swapsOut,
      swapInBytes: c.swapInBytes,
      swapOutBytes: c.swapOutBytes,
      hits: c.hits,
      misses: c.misses,
      leaseConflicts: c.leaseConflicts,
    });
  }

  /**
   * Refuses new operations, waits for those running here (at most `shutdownTimeoutMs`; an append prepared
   * and never committed or aborted is not waited for longer), drops the hot tier and closes what the cache
   * opened from URLs.
   */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const deadline = Date.now() + this.shutdownTimeoutMs;
    while (this.lru.pinned > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    // Hot copies go with the instance; their marks stay (advisory: no other instance reads another's hot tier).
    for (const slot of this.lru.hotSlots()) if (slot.idle) this.lru.dropAll(slot);
    for (const o of this.owned) await o.close().catch(() => undefined);
  }

  // ---- internals ----

  private checkOpen(): void {
    if (this.closed) throw tcError('TC_ERR_SHUTTING_DOWN', 'the session cache is shut down');
  }

  /** The session's record, its hash checked. @throws TC_ERR_NOT_FOUND; TC_ERR_INCOMPATIBLE */
  private async record(sessionId: string, expectHash: string | undefined): Promise<SessionRecord> {
    const record = mustExist(sessionId, await this.meta.get(sessionId));
    checkHash(record, expectHash);
    return record;
  }

  /** Runs `fn` with the session pinned here. */
  private async pinned<T>(sessionId: string, fn: (slot: SessionSlot) => Promise<T>): Promise<T> {
    this.checkOpen();
    const slot = this.lru.pin(sessionId);
    try {
      return await fn(slot);
    } finally {
      this.lru.unpin(slot);
    }
  }

  /** Runs `fn` with the session pinned, its lock here and its lease taken (released after). */
  private exclusive<T>(
    sessionId: string,
    what: string,
    options: SessionOpOptions,
    fn: (slot: SessionSlot, lease: SessionLease) => Promise<T>,
  ): Promise<T> {
    return this.pinned(sessionId, async (slot) => {
      await slot.lock.lock(options.timeoutMs ?? this.lockTimeoutMs, what);
      try {
        const lease = await this.swapper.acquire(sessionId);
        try {
          return await fn(slot, lease);
        } finally {
          await this.swapper.release(lease);
        }
      } finally {
        slot.lock.unlock();
      }
    });
  }

  /** Checks a read and brings the session in when it is not hot here (best effort). */
  private async openRange(
    slot: SessionSlot,
    range: TokenRange,
    options: SessionOpOptions,
    into: Uint8Array | undefined,
  ): Promise<{ record: SessionRecord; bytes: number; hit: boolean }> {
    const sessionId = slot.sessionId;
    let record = await this.record(sessionId, options.expectHash);
    const bytes = checkRange(record, range);
    if (into !== undefined) checkInto(into, bytes, sessionId);
    const hit = missingEntries(slot, record).length === 0;
    if (hit) this.counters.hits++;
    else {
      this.counters.misses++;
      record = await this.swapInForRead(slot, record);
      checkRange(record, range);
    }
    this.lru.touch(slot);
    return { record, bytes, hit };
  }

  /**
   * Swaps a session in for a read, when that can be done now: not while another operation changes it here
   * or another instance holds its lease (readers take no lease of their own), not when it cannot fit. The
   * read then takes what is not hot from the cold tier. Answers the freshest record seen.
   */
  private async swapInForRead(slot: SessionSlot, record: SessionRecord): Promise<SessionRecord> {
    if (recordBytes(record) > this.hot.budgetBytes || !slot.lock.tryLock()) return record;
    try {
      const lease = await this.swapper.acquire(slot.sessionId).catch(() => undefined);
      if (lease === undefined) return record;
      try {
        const fresh = await this.meta.get(slot.sessionId);
        if (fresh === undefined) return record;
        this.lru.dropExcept(slot, new Set(fresh.entries.map((e) => e.uri)));
        const missing = missingEntries(slot, fresh);
        const missingBytes = recordBytes(fresh) - slot.hotBytes;
        if (missing.length === 0 || recordBytes(fresh) > this.hot.budgetBytes) return fresh;
        if (!(await this.swapper.makeRoom(missingBytes, slot))) return fresh;
        // A damaged cold copy: the read reports it when it reads that entry from cold.
        await this.swapper.copyIn(slot, missing).catch(() => undefined);
        return await this.writeMarks(slot, lease, fresh).catch(() => fresh);
      } finally {
        await this.swapper.release(lease);
      }
    } finally {
      slot.lock.unlock();
    }
  }

  /** Writes this instance's marks of `record`'s entries (one update; none when they are right already). */
  private async writeMarks(slot: SessionSlot, lease: SessionLease, record: SessionRecord): Promise<SessionRecord> {
    const entries = markEntries(record.entries, slot, this.owner);
    if (sameMarks(entries, record.entries)) return record;
    return this.meta.update(lease, record.version, { entries, tokens: record.tokens });
  }
}

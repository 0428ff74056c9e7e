// The writing side of a session cache: appends (validated and held, then written through: cold object, hot
// copy, one metadata update), the prefix object of a truncate, and the cleanup of objects no record names.
// Keys being written are tracked so that gc never deletes them (docs/sessions.md "The cache instance").

import { constants as bufferConstants } from 'node:buffer';
import { crc32cAsync } from '../bytes/crc32c.js';
import { isTensorcastError, tcError } from '../core/errors.js';
import type { Connector } from '../connectors/connector.js';
import { coldKey, readEntryInto } from './cold-objects.js';
import { bytesPerToken } from './geometry.js';
import type { HotTier } from './hot-tier.js';
import type { SessionMetaStore } from './meta/session-meta-store.js';
import type { AppendResult, SessionOpOptions } from './session-cache-api.js';
import { checkAppend, checkId, checkTokenCount } from './session-checks.js';
import type { SessionLru, SessionSlot } from './session-lru.js';
import type { SessionEntry, SessionLease, SessionRecord } from './session-types.js';
import { markEntries, missingEntries, recordBytes, type Swapper } from './swap.js';

/** The most bytes one append can carry: they land in one buffer. */
export const MAX_APPEND_BYTES: number = bufferConstants.MAX_LENGTH;

/** Cold deletes in flight when objects are dropped. */
const DELETE_CONCURRENCY = 8;

/** An append validated and holding its session (lease, lock, pin, room) until commit or abort. */
export interface PreparedAppend {
  readonly slot: SessionSlot;
  readonly lease: SessionLease;
  readonly record: SessionRecord;
  readonly tokenOffset: number;
  readonly tokenLength: number;
  readonly size: number;
  /** Reserved hot room the bytes land in (undefined: the append goes to the cold tier only). */
  hotDest: Buffer | undefined;
  done: boolean;
}

/** What the writer works with: the parts of one cache instance. */
export interface WriterParts {
  readonly owner: string;
  readonly meta: SessionMetaStore;
  readonly cold: Connector;
  readonly hot: HotTier;
  readonly lru: SessionLru;
  readonly swapper: Swapper;
  readonly counters: { hits: number; misses: number };
  readonly lockTimeoutMs: number;
  /** The session's record, its hash checked (TC_ERR_NOT_FOUND, TC_ERR_INCOMPATIBLE). */
  readonly load: (sessionId: string, expectHash: string | undefined) => Promise<SessionRecord>;
  /** Throws when the cache is shut down. */
  readonly checkOpen: () => void;
}

/**
 * The writes of one cache instance.
 *
 * @example
 * const p = await writer.prepare(id, tokens, kv.length, {});
 * await writer.commit(p, kv, {});
 */
export class SessionWriter {
  /** Cold keys being written (gc never deletes them). */
  private readonly writing = new Set<string>();
  /** While a gc runs: every key written since it started (and those being written then). */
  private gcSpared: Set<string> | undefined;
  private gcRuns = 0;

  constructor(private readonly parts: WriterParts) {}

  /** Starts a gc: answers the keys it must spare, until `endGc`. */
  beginGc(): { has(key: string): boolean } {
    this.gcRuns++;
    this.gcSpared ??= new Set(this.writing);
    const spared = this.gcSpared;
    return { has: (key) => this.writing.has(key) || spared.has(key) };
  }

  endGc(): void {
    if (--this.gcRuns === 0) this.gcSpared = undefined;
  }

  private startWriting(key: string): void {
    this.writing.add(key);
    this.gcSpared?.add(key);
  }

  /**
   * Validates an append and holds its session: pinned, locked here, leased; swapped in when it fits, with
   * room reserved for the new bytes (else they go to the cold tier only).
   */
  async prepare(sessionId: string, tokenOffset: number, size: number, options: SessionOpOptions): Promise<PreparedAppend> {
    checkId(sessionId);
    checkTokenCount(tokenOffset, 'tokenOffset');
    checkTokenCount(size, 'size');
    if (size > MAX_APPEND_BYTES) {
      // The bytes land in one buffer (hot, or for a cold-only append a fresh one): more cannot be allocated.
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `append to session '${sessionId}': ${size} bytes is more than one append can carry (${MAX_APPEND_BYTES})`,
        {
          details: { reason: 'too_large', size, maxBytes: MAX_APPEND_BYTES },
        },
      );
    }
    this.parts.checkOpen();
    const slot = this.parts.lru.pin(sessionId);
    let locked = false;
    let lease: SessionLease | undefined;
    try {
      await slot.lock.lock(options.timeoutMs ?? this.parts.lockTimeoutMs, `append to session '${sessionId}'`);
      locked = true;
      lease = await this.parts.swapper.acquire(sessionId);
      const record = await this.parts.load(sessionId, options.expectHash);
      const tokenLength = checkAppend(record, tokenOffset, size);
      this.parts.lru.dropExcept(slot, new Set(record.entries.map((e) => e.uri)));
      const missing = missingEntries(slot, record);
      if (missing.length === 0) this.parts.counters.hits++;
      else this.parts.counters.misses++;
      let hotDest: Buffer | undefined;
      if (recordBytes(record) + size > this.parts.hot.budgetBytes) {
        // Too large for the hot tier: served from cold (its marks are cleared by the append's update).
        this.parts.lru.dropAll(slot);
      } else if (await this.parts.swapper.makeRoom(recordBytes(record) - slot.hotBytes + size, slot)) {
        // The new bytes' room is kept even when the swap-in fails (a damaged copy is reported by reads).
        await this.parts.swapper.copyIn(slot, missing).catch(() => undefined);
        hotDest = this.parts.hot.allocate(size);
      }
      return { slot, lease, record, tokenOffset, tokenLength, size, hotDest, done: false };
    } catch (error) {
      if (lease !== undefined) await this.parts.swapper.release(lease);
      if (locked) slot.lock.unlock();
      this.parts.lru.unpin(slot);
      throw error;
    }
  }

  /** Writes the append through (cold, hot copy, one metadata update) and lets the session go. */
  async commit(p: PreparedAppend, source: Uint8Array, options: SessionOpOptions): Promise<AppendResult> {
    if (p.done) throw tcError('TC_ERR_INVALID_ARGUMENT', 'this append was already committed or aborted');
    const sessionId = p.slot.sessionId;
    const key = coldKey(sessionId, p.tokenOffset, p.tokenLength);
    this.startWriting(key);
    try {
      const crc32c = await crc32cAsync(source);
      await this.parts.cold.write(key, source, { size: p.size, ...(options.signal === undefined ? {} : { signal: options.signal }) });
      const entry: SessionEntry = {
        tokenOffset: p.tokenOffset,
        tokenLength: p.tokenLength,
        connector: this.parts.cold.displayUrl,
        uri: key,
        bytes: p.size,
        crc32c,
      };
      if (p.hotDest !== undefined) {
        if (p.hotDest !== source) p.hotDest.set(source);
        this.parts.lru.addCopy(p.slot, key, p.hotDest);
        p.hotDest = undefined;
      }
      let updated: SessionRecord;
      try {
        const entries = markEntries([...p.record.entries, entry], p.slot, this.parts.owner);
        updated = await this.parts.meta.update(p.lease, p.record.version, { entries, tokens: p.tokenOffset + p.tokenLength });
      } catch (error) {
        await this.discard(p.slot, key, error);
        throw error;
      }
      this.parts.lru.touch(p.slot);
      return { sessionId, tokenOffset: p.tokenOffset, tokenLength: p.tokenLength, tokens: updated.tokens, version: updated.version };
    } finally {
      this.writing.delete(key);
      await this.finish(p);
    }
  }

  /** Lets a prepared append's session go: room, lease, lock, pin (idempotent). */
  async finish(p: PreparedAppend): Promise<void> {
    if (p.done) return;
    p.done = true;
    if (p.hotDest !== undefined) {
      this.parts.hot.release(p.size);
      p.hotDest = undefined;
    }
    try {
      await this.parts.swapper.release(p.lease);
    } finally {
      p.slot.lock.unlock();
      this.parts.lru.unpin(p.slot);
    }
  }

  /** Writes the part of `cut` before `tokenEnd` as a new object (hot too when `cut` was and room is free). */
  async writePrefix(slot: SessionSlot, record: SessionRecord, cut: SessionEntry, tokenEnd: number): Promise<SessionEntry> {
    const tokenLength = tokenEnd - cut.tokenOffset;
    const bytes = tokenLength * bytesPerToken(record.geometry);
    const copy = slot.copies.get(cut.uri);
    let whole = copy;
    if (whole === undefined) {
      whole = Buffer.allocUnsafeSlow(cut.bytes);
      await readEntryInto(this.parts.cold, record.sessionId, cut, whole);
    }
    const prefix = whole.subarray(0, bytes);
    const key = coldKey(record.sessionId, cut.tokenOffset, tokenLength);
    this.startWriting(key);
    try {
      const crc32c = await crc32cAsync(prefix);
      await this.parts.cold.write(key, prefix, { size: bytes });
      if (copy !== undefined && this.parts.hot.tryReserve(bytes)) {
        const hotCopy = this.parts.hot.allocate(bytes);
        hotCopy.set(prefix);
        this.parts.lru.addCopy(slot, key, hotCopy);
      }
      return { tokenOffset: cut.tokenOffset, tokenLength, connector: this.parts.cold.displayUrl, uri: key, bytes, crc32c };
    } catch (error) {
      this.writing.delete(key);
      await this.parts.cold.delete(key).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Undoes an object written for a change whose metadata update failed. After a store outage the update may
   * have been applied all the same (its answer was lost): the object then stays for gc, which deletes it only
   * if no record names it.
   */
  async discard(slot: SessionSlot, key: string, error: unknown): Promise<void> {
    this.parts.lru.dropCopy(slot, key);
    const definite =
      isTensorcastError(error) &&
      (error.code === 'TC_ERR_CONFLICT' || error.code === 'TC_ERR_NOT_FOUND' || error.code === 'TC_ERR_INVALID_ARGUMENT');
    if (definite) await this.parts.cold.delete(key).catch(() => undefined);
  }

  /** Deletes the objects of entries no record references any more (failures are left to gc). */
  async deleteObjects(entries: readonly SessionEntry[]): Promise<void> {
    const keys = entries.map((e) => e.uri);
    for (let i = 0; i < keys.length; i += DELETE_CONCURRENCY) {
      await Promise.all(keys.slice(i, i + DELETE_CONCURRENCY).map((k) => this.parts.cold.delete(k).catch(() => undefined)));
    }
  }

  /** Ends the tracking of a key written for a change (recorded, or given up). */
  doneWriting(key: string): void {
    this.writing.delete(key);
  }
}

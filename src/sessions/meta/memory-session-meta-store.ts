// The in-memory session metadata store: records in a map, expiry by Date.now(). The embedded default; lost
// when the process ends, visible to this process only.

import { tcError } from '../../core/errors.js';
import type { SessionGeometry } from '../geometry.js';
import type { SessionLease, SessionRecord } from '../session-types.js';
import {
  checkChange,
  checkCreate,
  checkLease,
  checkOwner,
  checkRemove,
  checkSessionId,
  checkTtl,
  compareSessionIds,
  decideAcquire,
  decideRenew,
  decideUpdate,
  isCurrentLease,
  listLimit,
  newRecord,
  sessionExists,
  sessionNotFound,
} from './session-meta-rules.js';
import type { SessionChange, SessionListOptions, SessionMetaStore } from './session-meta-store.js';

/** Options of the memory store. */
export interface MemorySessionMetaStoreOptions {
  /** The clock, ms since the epoch (Date.now by default; tests pass their own). */
  readonly now?: () => number;
}

/**
 * A `SessionMetaStore` in this process's memory. Every method runs synchronously to completion, so each is
 * atomic with respect to the others; records handed out are frozen snapshots.
 *
 * @example
 * const meta = new MemorySessionMetaStore();
 * await meta.create('chat-1', geometry, geometryHash(geometry));
 * const lease = await meta.acquire('chat-1', 'worker-a', 30_000);
 */
export class MemorySessionMetaStore implements SessionMetaStore {
  readonly kind = 'memory';
  readonly shared = false;
  readonly #records = new Map<string, SessionRecord>();
  readonly #now: () => number;
  #closed = false;

  constructor(options: MemorySessionMetaStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  create(sessionId: string, geometry: SessionGeometry, geometryHash: string): Promise<SessionRecord> {
    return this.#run((now) => {
      const checked = checkCreate(sessionId, geometry, geometryHash);
      if (this.#records.has(sessionId)) throw sessionExists(sessionId);
      return this.#put(newRecord(sessionId, checked, geometryHash, now));
    });
  }

  get(sessionId: string): Promise<SessionRecord | undefined> {
    return this.#run(() => {
      checkSessionId(sessionId);
      return this.#records.get(sessionId);
    });
  }

  list(options: SessionListOptions = {}): Promise<SessionRecord[]> {
    return this.#run(() => {
      const limit = listLimit(options);
      const after = options.after;
      const ids = [...this.#records.keys()].filter((id) => after === undefined || id > after).sort(compareSessionIds);
      return ids.slice(0, limit).map((id) => this.#records.get(id) as SessionRecord);
    });
  }

  acquire(sessionId: string, owner: string, ttlMs: number): Promise<SessionLease> {
    return this.#run((now) => {
      checkSessionId(sessionId);
      checkOwner(owner);
      checkTtl(ttlMs);
      const next = this.#put(decideAcquire(this.#existing(sessionId), owner, ttlMs, now));
      return next.lease as SessionLease;
    });
  }

  renew(lease: SessionLease, ttlMs: number): Promise<SessionLease> {
    return this.#run((now) => {
      checkLease(lease);
      checkTtl(ttlMs);
      const next = this.#put(decideRenew(this.#existing(lease.sessionId), lease, ttlMs, now));
      return next.lease as SessionLease;
    });
  }

  release(lease: SessionLease): Promise<void> {
    return this.#run(() => {
      checkLease(lease);
      const record = this.#records.get(lease.sessionId);
      if (record !== undefined && isCurrentLease(record, lease)) this.#put({ ...record, lease: null });
    });
  }

  update(lease: SessionLease, expectedVersion: number, change: SessionChange): Promise<SessionRecord> {
    return this.#run((now) => {
      checkLease(lease);
      const entries = checkChange(change);
      return this.#put(decideUpdate(this.#existing(lease.sessionId), lease, expectedVersion, entries, now));
    });
  }

  remove(sessionId: string, lease?: SessionLease): Promise<SessionRecord | undefined> {
    return this.#run((now) => {
      checkSessionId(sessionId);
      if (lease !== undefined) {
        checkLease(lease);
        if (lease.sessionId !== sessionId)
          throw tcError('TC_ERR_INVALID_ARGUMENT', `the lease is for session '${lease.sessionId}', not '${sessionId}'`);
      }
      const record = this.#records.get(sessionId);
      if (record === undefined) return undefined;
      checkRemove(record, lease, now);
      this.#records.delete(sessionId);
      return record;
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#records.clear();
    return Promise.resolve();
  }

  #existing(sessionId: string): SessionRecord {
    const record = this.#records.get(sessionId);
    if (record === undefined) throw sessionNotFound(sessionId);
    return record;
  }

  #put(record: SessionRecord): SessionRecord {
    const frozen = freezeRecord(record);
    this.#records.set(record.sessionId, frozen);
    return frozen;
  }

  /** Runs `fn` at the current time as one step; what it throws becomes the rejection. */
  #run<T>(fn: (nowMs: number) => T): Promise<T> {
    return new Promise<T>((resolve) => {
      if (this.#closed) throw tcError('TC_ERR_SHUTTING_DOWN', 'the session metadata store is closed');
      resolve(fn(this.#now()));
    });
  }
}

/** Freezes a record and what it holds, so a caller cannot change the store's copy through it. */
export function freezeRecord(record: SessionRecord): SessionRecord {
  for (const entry of record.entries) {
    if (entry.hot !== undefined) Object.freeze(entry.hot);
    Object.freeze(entry);
  }
  Object.freeze(record.entries);
  Object.freeze(record.geometry);
  if (record.lease !== null) Object.freeze(record.lease);
  return Object.freeze(record);
}

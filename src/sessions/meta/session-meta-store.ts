// Where session metadata lives (docs/sessions.md "Metadata stores"): memory (embedded, lost on restart), sqlite
// (a file: a restarted server recovers every session), redis and postgres (shared: several servers continue
// each other's sessions). Every change of a session's entries is a compare-and-swap on its version, made
// under a lease whose fencing token is checked in the same atomic step: two writers cannot interleave, and a
// writer whose lease expired and was taken over gets TC_ERR_CONFLICT. Expiry uses the store's clock.

import type { SessionGeometry } from '../geometry.js';
import type { SessionEntry, SessionLease, SessionRecord } from '../session-types.js';

/** The change an update makes: the session's new entries and token count. */
export interface SessionChange {
  readonly entries: readonly SessionEntry[];
  readonly tokens: number;
}

/** One page of `list`. */
export interface SessionListOptions {
  /** Only ids after this one (the last id of the previous page). */
  readonly after?: string;
  readonly limit?: number;
}

/** The metadata store of a session cache. Safe to call concurrently from many processes (shared stores). */
export interface SessionMetaStore {
  readonly kind: 'memory' | 'sqlite' | 'redis' | 'postgres';
  /** True when other processes may use the same sessions (redis, postgres; sqlite: one process at a time). */
  readonly shared: boolean;
  /** @throws TC_ERR_CONFLICT when the id exists; TC_ERR_BACKEND */
  create(sessionId: string, geometry: SessionGeometry, geometryHash: string): Promise<SessionRecord>;
  get(sessionId: string): Promise<SessionRecord | undefined>;
  /** Sessions ordered by id (byte order), at most `limit` (default 1000, at most 10000) after `after`. */
  list(options?: SessionListOptions): Promise<SessionRecord[]>;
  /**
   * Takes the session's lease for `owner` (re-entrant for the same owner: a fresh fence either way).
   *
   * @throws TC_ERR_CONFLICT when another owner holds an unexpired lease (details: holder, expiresAtMs);
   *   TC_ERR_NOT_FOUND
   */
  acquire(sessionId: string, owner: string, ttlMs: number): Promise<SessionLease>;
  /** Extends `lease` by `ttlMs` from now. @throws TC_ERR_CONFLICT when `lease` is not the session's current lease (see update) */
  renew(lease: SessionLease, ttlMs: number): Promise<SessionLease>;
  /** Gives the lease up (nothing when it is not live any more). */
  release(lease: SessionLease): Promise<void>;
  /**
   * Replaces the session's entries if `lease` is its current lease and its version is `expectedVersion`. A lease
   * is current while the record holds it with its fence: an expired lease nobody took over still is (no other
   * writer can have written); one that was released, replaced (a re-entrant acquire) or taken over is stale. The
   * entries must run contiguously from token 0 and `tokens` must be their end (TC_ERR_INVALID_ARGUMENT).
   *
   * @throws TC_ERR_CONFLICT (stale lease or version; nothing changed); TC_ERR_NOT_FOUND
   */
  update(lease: SessionLease, expectedVersion: number, change: SessionChange): Promise<SessionRecord>;
  /**
   * Removes the session and returns its last record (to free its tiers), if `lease` is current (or no lease is
   * given and no live lease is held); undefined when there is no such session.
   *
   * @throws TC_ERR_CONFLICT when another owner holds the lease
   */
  remove(sessionId: string, lease?: SessionLease): Promise<SessionRecord | undefined>;
  close(): Promise<void>;
}

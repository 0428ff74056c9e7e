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
  /** Sessions ordered by id. */
  list(options?: SessionListOptions): Promise<SessionRecord[]>;
  /**
   * Takes the session's lease for `owner` (re-entrant for the same owner: a fresh fence either way).
   *
   * @throws TC_ERR_CONFLICT when another owner holds an unexpired lease (details: holder, expiresAtMs);
   *   TC_ERR_NOT_FOUND
   */
  acquire(sessionId: string, owner: string, ttlMs: number): Promise<SessionLease>;
  /** @throws TC_ERR_CONFLICT when `lease` is no longer the session's live lease */
  renew(lease: SessionLease, ttlMs: number): Promise<SessionLease>;
  /** Gives the lease up (nothing when it is not live any more). */
  release(lease: SessionLease): Promise<void>;
  /**
   * Replaces the session's entries if `lease` is its live lease and its version is `expectedVersion`.
   *
   * @throws TC_ERR_CONFLICT (stale lease or version; nothing changed); TC_ERR_NOT_FOUND
   */
  update(lease: SessionLease, expectedVersion: number, change: SessionChange): Promise<SessionRecord>;
  /**
   * Removes the session and returns its last record (to free its tiers), if `lease` is live (or no lease is
   * given and none is held).
   *
   * @throws TC_ERR_CONFLICT when another owner holds the lease
   */
  remove(sessionId: string, lease?: SessionLease): Promise<SessionRecord | undefined>;
  close(): Promise<void>;
}

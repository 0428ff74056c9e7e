// Where a handshake listener keeps published rank metadata: in memory (one listener), or in Redis or
// PostgreSQL (several listeners serve one cluster; a restarted listener loses nothing). Expiry is decided by
// the store's own clock (Redis TIME, PostgreSQL now(), Date.now() in memory), so listeners on hosts with
// skewed clocks agree. An expired rank is remembered for `expiredGraceMs` so a reader learns
// TC_ERR_EXPIRED instead of TC_ERR_NOT_FOUND; after that it is forgotten.

import type { EngineSummary } from '../../protocol/http/handshake.js';

/** One publish, after the listener validated the payload. */
export interface PublishRecord {
  readonly engineId: string;
  readonly tpRank: number;
  readonly dpRank: number;
  readonly incarnation: string;
  readonly compatibilityHash: string;
  readonly tpSize: number;
  /** The payload exactly as the publisher sent it (readers get these bytes back). */
  readonly payload: Uint8Array;
}

/** Limits a store enforces atomically with the write. */
export interface PublishLimits {
  readonly ttlMs: number;
  /** Sum of payload bytes of one engine's live ranks, this publish included. */
  readonly maxEngineBytes: number;
}

/** What a publish did. */
export interface PublishResult {
  readonly expiresAtMs: number;
  /** The older incarnation whose ranks this publish dropped, or null. */
  readonly replacedIncarnation: string | null;
}

/** One rank as stored. */
export interface StoredRank {
  readonly incarnation: string;
  readonly compatibilityHash: string;
  readonly tpSize: number;
  readonly payload: Uint8Array;
  readonly publishedAtMs: number;
  readonly expiresAtMs: number;
}

/** The answer for one rank: live, expired (within the grace period), or unknown. */
export type RankLookup =
  | { readonly state: 'live'; readonly rank: StoredRank }
  | { readonly state: 'expired'; readonly incarnation: string; readonly expiredAtMs: number }
  | { readonly state: 'missing' };

/** The engine-level facts checked before a body is read. */
export interface EngineHead {
  readonly incarnation: string;
  readonly compatibilityHash: string;
}

/** The storage behind a handshake listener. Every method is safe to call concurrently from many listeners. */
export interface HandshakeStore {
  /** Which backend (`memory`, `redis`, `postgres`), for health and logs. */
  readonly kind: string;
  /** The live incarnation and hash of an engine (from its live ranks), or undefined. */
  head(engineId: string): Promise<EngineHead | undefined>;
  /**
   * Stores one rank, atomically: a new incarnation drops every rank of the old one first; the same
   * incarnation with another compatibility hash is refused.
   *
   * @throws TC_ERR_INCOMPATIBLE when live ranks of the same incarnation carry another hash; TC_ERR_TOO_LARGE
   * when the engine's live payload bytes would pass `maxEngineBytes` (nothing is written); TC_ERR_BACKEND.
   */
  publish(record: PublishRecord, limits: PublishLimits): Promise<PublishResult>;
  /** One rank. */
  rank(engineId: string, tpRank: number, dpRank: number): Promise<RankLookup>;
  /**
   * Extends the TTL of every live rank of `incarnation`; returns how many, and the new expiry.
   * An incarnation that is not the live one renews nothing (0).
   */
  renew(engineId: string, incarnation: string, ttlMs: number): Promise<{ renewed: number; expiresAtMs: number }>;
  /** Removes an engine's ranks (only those of `incarnation` when given); returns how many. */
  remove(engineId: string, incarnation?: string): Promise<number>;
  /** One engine's live ranks, or undefined when it has none. */
  engine(engineId: string): Promise<EngineSummary | undefined>;
  /** Every engine with live ranks, ordered by engine id. */
  engines(): Promise<EngineSummary[]>;
  /** Forgets entries expired longer than the grace period ago (the listener calls it now and then). */
  sweep(): Promise<void>;
  close(): Promise<void>;
}

/** Options every store takes. */
export interface HandshakeStoreOptions {
  /** How long an expired rank is still reported as expired (default 10 minutes). */
  readonly expiredGraceMs?: number;
}

/** The default grace period of expired entries. */
export const DEFAULT_EXPIRED_GRACE_MS = 10 * 60_000;

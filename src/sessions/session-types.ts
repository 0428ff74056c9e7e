// The session model (docs/sessions.md): a session's record as the metadata store keeps it, its entries, and
// what the cache API answers. Shared by the embedded cache, the metadata stores, the daemon's routes and the SDK.

import type { SessionGeometry } from './geometry.js';

/** Session ids: 1..128 characters of these. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_.:@+-]{1,128}$/;

/**
 * A range of tokens whose KV bytes live at `uri` in `connector` (the cold connector's display URL). Entries
 * are immutable: a truncate or swap writes new objects under new uris, never rewrites one. `hot` marks that
 * the cache instance `holder` has a copy in its hot tier (set in one metadata update after the copy is
 * complete, cleared in one update before the copy is freed); other instances read from `connector`/`uri`.
 */
export interface SessionEntry {
  readonly tokenOffset: number;
  readonly tokenLength: number;
  readonly connector: string;
  readonly uri: string;
  /** tokenLength * bytesPerToken. */
  readonly bytes: number;
  /** CRC32C of the entry's bytes, checked on swap-in and cold reads. */
  readonly crc32c: number;
  readonly hot?: { readonly holder: string };
}

/** A writer's lease on one session; `fence` grows with every lease the session ever gave. */
export interface SessionLease {
  readonly sessionId: string;
  readonly owner: string;
  readonly fence: number;
  readonly expiresAtMs: number;
}

/** A session as the metadata store keeps it. */
export interface SessionRecord {
  readonly sessionId: string;
  readonly geometry: SessionGeometry;
  /** geometryHash(geometry). */
  readonly geometryHash: string;
  /** Tokens held: the end of the last entry (0 for a new session). */
  readonly tokens: number;
  readonly entries: readonly SessionEntry[];
  /** Grows by one with every change of entries (compare-and-swap). */
  readonly version: number;
  /** The last fence issued. */
  readonly fence: number;
  /** The live lease, if any (an expired one may still be shown until the next acquire). */
  readonly lease: SessionLease | null;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
}

/** What `stat` and `list` answer for one session. */
export interface SessionStat {
  readonly sessionId: string;
  readonly geometryHash: string;
  readonly modelId: string;
  readonly tokens: number;
  readonly bytes: number;
  readonly entries: number;
  /** Bytes of this session in this instance's hot tier. */
  readonly hotBytes: number;
  /** 'hot' (every entry has a hot copy here), 'cold' (none), 'partial'. */
  readonly residency: 'hot' | 'cold' | 'partial';
  readonly version: number;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
}

/** What a swap did. */
export interface SwapResult {
  readonly sessionId: string;
  /** Bytes moved (0 when the session already was where asked). */
  readonly bytes: number;
  readonly durationMs: number;
}

/** What `gc` did: cold objects under the sessions prefix that no session references are deleted. */
export interface GcResult {
  readonly scanned: number;
  readonly deleted: number;
  readonly deletedBytes: number;
}

/** Counters of one cache instance (also exported as Prometheus metrics by the daemon). */
export interface SessionCacheStats {
  readonly hotBytes: number;
  readonly hotBudgetBytes: number;
  readonly hotSessions: number;
  readonly swapsIn: number;
  readonly swapsOut: number;
  readonly swapInBytes: number;
  readonly swapOutBytes: number;
  /** Reads and appends that found the session hot here. */
  readonly hits: number;
  /** Reads and appends that had to swap in first. */
  readonly misses: number;
  readonly leaseConflicts: number;
}

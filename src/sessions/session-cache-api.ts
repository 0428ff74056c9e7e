// The session cache's API, one interface for the embedded cache (createSessionCache, in-process) and the SDK's
// client.sessions() (the same operations on a daemon over its control API and data plane).

import type { SessionGeometry } from './geometry.js';
import type { GcResult, SessionCacheStats, SessionStat, SwapResult } from './session-types.js';

/** Options of create. */
export interface CreateSessionOptions {
  /** The id; default a random one. */
  readonly sessionId?: string;
  readonly geometry: SessionGeometry;
}

/** Options every session operation takes. */
export interface SessionOpOptions {
  /** The geometry hash the caller expects: another one is TC_ERR_INCOMPATIBLE before any byte moves. */
  readonly expectHash?: string;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/** What an append answers. */
export interface AppendResult {
  readonly sessionId: string;
  readonly tokenOffset: number;
  readonly tokenLength: number;
  /** The session's tokens after the append. */
  readonly tokens: number;
  readonly version: number;
}

/** A token range: [tokenStart, tokenEnd). */
export interface TokenRange {
  readonly tokenStart: number;
  readonly tokenEnd: number;
}

/** What a read answers (the bytes are in the caller's `into`). */
export interface ReadResult {
  readonly sessionId: string;
  readonly bytes: number;
  /** True when the session was hot here; false when it was swapped in first (or read from cold). */
  readonly hit: boolean;
}

/**
 * A session KV cache.
 *
 * @example
 * const cache = await createSessionCache({ hot: { budgetBytes: 8 << 30 }, cold: 'file:///var/kv', meta: 'sqlite:///var/kv/sessions.db' });
 * const s = await cache.create({ geometry });
 * await cache.append(s.sessionId, 0, kvOfPrompt);
 * await cache.read(s.sessionId, { tokenStart: 0, tokenEnd: 512 }, { into: buffer });
 */
export interface SessionCacheApi {
  /** @throws TC_ERR_CONFLICT (id taken); TC_ERR_INVALID_ARGUMENT (geometry, id) */
  create(options: CreateSessionOptions): Promise<SessionStat>;
  /**
   * Appends the KV of tokens [tokenOffset, tokenOffset + kv.length / bytesPerToken). `tokenOffset` must be
   * the session's current end; `kv` whole tokens. Swaps the session in first when it is cold.
   *
   * @throws TC_ERR_INVALID_ARGUMENT (details.reason 'gap' | 'overlap' | 'partial_token'); TC_ERR_CONFLICT
   *   (another writer holds the session, or this writer's lease was taken over); TC_ERR_INCOMPATIBLE;
   *   TC_ERR_NOT_FOUND. Never TC_ERR_BUDGET: the cold tier holds every acknowledged byte, so a session that
   *   cannot be hot is served from cold.
   */
  append(sessionId: string, tokenOffset: number, kv: Uint8Array, options?: SessionOpOptions): Promise<AppendResult>;
  /**
   * Reads the KV of `range` into `options.into`, whose length must be exactly the range's bytes.
   *
   * @throws TC_ERR_SOURCE_RANGE (beyond the session's end, or an empty/reversed range);
   *   TC_ERR_DESTINATION_SIZE; TC_ERR_INCOMPATIBLE; TC_ERR_NOT_FOUND; TC_ERR_CHECKSUM (a cold copy is damaged)
   */
  read(sessionId: string, range: TokenRange, options: SessionOpOptions & { readonly into: Uint8Array }): Promise<ReadResult>;
  /** Drops the tokens from `tokenEnd` on (a user edited the conversation). */
  truncate(sessionId: string, tokenEnd: number, options?: SessionOpOptions): Promise<SessionStat>;
  /** Removes the session and frees every tier. @throws TC_ERR_NOT_FOUND; TC_ERR_CONFLICT (in use elsewhere) */
  close(sessionId: string, options?: SessionOpOptions): Promise<void>;
  list(options?: { readonly after?: string; readonly limit?: number }): Promise<SessionStat[]>;
  stat(sessionId: string): Promise<SessionStat>;
  /** Moves the session's hot bytes out (they are already cold: the hot copies are dropped). */
  swapOut(sessionId: string): Promise<SwapResult>;
  /** Brings the session into the hot tier. @throws TC_ERR_BUDGET when it cannot fit */
  swapIn(sessionId: string): Promise<SwapResult>;
  /** Deletes cold objects that no session references (left by a crash mid-append or mid-truncate). */
  gc(): Promise<GcResult>;
  stats(): Promise<SessionCacheStats>;
  /** Stops the cache (the sessions stay in the stores). */
  shutdown(): Promise<void>;
}

/** An append whose bytes land straight in the hot tier (the daemon's data plane fills `dest`). */
export interface PendingAppend {
  /** Exactly the append's size; the caller fills it completely before commit. */
  readonly dest: Uint8Array;
  /** Writes the bytes through to the cold tier and records the entry. Rejects like `append`. */
  commit(): Promise<AppendResult>;
  /** Gives the reserved room back (idempotent; after a failed transfer). */
  abort(): void;
}

/** A read whose bytes the caller streams out (the daemon's data plane sends the chunks). */
export interface OpenRead {
  readonly bytes: number;
  readonly hit: boolean;
  /** The range's bytes in order, as views of hot copies (or of buffers read from cold); valid until close. */
  chunks(): AsyncIterable<Uint8Array>;
  /** Unpins the session (idempotent). */
  close(): void;
}

/** What the daemon's data plane needs beyond the API: zero-copy appends and reads. */
export interface SessionCacheEngine extends SessionCacheApi {
  /** Validates and reserves: the same checks and errors as `append`, before any byte is sent. */
  prepareAppend(sessionId: string, tokenOffset: number, size: number, options?: SessionOpOptions): Promise<PendingAppend>;
  /** Validates, swaps in when needed and pins the session until `close`. */
  openRead(sessionId: string, range: TokenRange, options?: SessionOpOptions): Promise<OpenRead>;
}

// The SDK's session KV cache (docs/sessions.md, docs/api.md "Sessions"): the same API as the embedded cache
// (SessionCacheApi), served by a daemon started with --sessions-cold. Appends and reads move their bytes over
// the data plane (SAPPEND / SREAD on a pooled connection: an append sends straight from the caller's buffer, a
// read lands straight in the caller's `into`); create, list, stat, truncate, close, swaps, gc and stats go
// through the control API (src/protocol/http/sessions.ts).

import { tcError } from '../core/errors.js';
import {
  SESSION_CACHE_STATS_PATH,
  SESSION_GC_PATH,
  SESSIONS_PATH,
  sessionPath,
  swapInPath,
  swapOutPath,
  truncatePath,
  type SessionPage,
} from '../protocol/http/sessions.js';
import type {
  AppendResult,
  CreateSessionOptions,
  ReadResult,
  SessionCacheApi,
  SessionOpOptions,
  TokenRange,
} from '../sessions/session-cache-api.js';
import { SESSION_ID_PATTERN, type GcResult, type SessionCacheStats, type SessionStat, type SwapResult } from '../sessions/session-types.js';
import type { ConnectionPool } from '../transport/connection-pool.js';
import type { ControlClient } from '../transport/control-client.js';

/** Options of {@link TensorcastClient.sessions}. */
export interface SessionsOptions {
  /** Default deadline of an append or read, in ms (default: the client's timeoutMs). */
  readonly timeoutMs?: number;
}

/** What RemoteSessions uses of its TensorcastClient. */
export interface SessionsContext {
  readonly pool: ConnectionPool;
  readonly control: ControlClient;
  /** Default deadline of an append or read, in ms. */
  readonly timeoutMs: number;
}

/** Page size of list(). */
const LIST_PAGE = 1000;

/**
 * The session cache of a daemon. Create with {@link TensorcastClient.sessions}.
 *
 * @example
 * const sessions = client.sessions();
 * const s = await sessions.create({ geometry: { modelId: 'llama-3-8b', layers: 32, kvHeads: 8, headDim: 128, dtype: 'BF16', tokensPerPage: 16 } });
 * await sessions.append(s.sessionId, 0, kvOfPrompt);
 * await sessions.read(s.sessionId, { tokenStart: 0, tokenEnd: 512 }, { into: buffer });
 */
export class RemoteSessions implements SessionCacheApi {
  private readonly timeoutMs: number;

  constructor(
    private readonly ctx: SessionsContext,
    options: SessionsOptions = {},
  ) {
    checkTimeout(options.timeoutMs);
    this.timeoutMs = options.timeoutMs ?? ctx.timeoutMs;
  }

  /** @throws TC_ERR_CONFLICT (id taken), TC_ERR_INVALID_ARGUMENT (geometry, id), TC_ERR_NOT_FOUND (sessions not enabled) */
  create(options: CreateSessionOptions): Promise<SessionStat> {
    if (options.sessionId !== undefined) checkId(options.sessionId);
    const body = { ...(options.sessionId === undefined ? {} : { sessionId: options.sessionId }), geometry: options.geometry };
    return this.ctx.control.json<SessionStat>('POST', SESSIONS_PATH, body);
  }

  /**
   * Appends the KV of whole tokens at `tokenOffset` (the session's end): one SAPPEND whose DATA frames go
   * straight from `kv` (do not change it until the promise settles). Resolves once the daemon recorded it.
   *
   * @throws TC_ERR_INVALID_ARGUMENT (reason gap/overlap/partial_token), TC_ERR_CONFLICT, TC_ERR_INCOMPATIBLE,
   *   TC_ERR_NOT_FOUND, TC_ERR_CHECKSUM, TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE
   */
  async append(sessionId: string, tokenOffset: number, kv: Uint8Array, options: SessionOpOptions = {}): Promise<AppendResult> {
    checkId(sessionId);
    checkTokens('tokenOffset', tokenOffset);
    if (!(kv instanceof Uint8Array)) throw tcError('TC_ERR_INVALID_ARGUMENT', `append to session '${sessionId}': kv must be a Uint8Array`);
    const timeoutMs = this.deadline(options);
    const conn = await this.ctx.pool.acquire(timeoutMs);
    try {
      const r = await conn.sessionAppend({ sessionId, tokenOffset, expectHash: options.expectHash, timeoutMs }, kv, options.signal);
      return { sessionId, tokenOffset, tokenLength: r.tokens - tokenOffset, tokens: r.tokens, version: r.version };
    } finally {
      this.ctx.pool.release(conn);
    }
  }

  /**
   * Reads the KV of `range` into `options.into` (exactly the range's bytes). Never resolves with a partly
   * filled buffer.
   *
   * @throws TC_ERR_SOURCE_RANGE, TC_ERR_DESTINATION_SIZE, TC_ERR_INCOMPATIBLE, TC_ERR_NOT_FOUND, TC_ERR_CHECKSUM,
   *   TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE
   */
  async read(sessionId: string, range: TokenRange, options: SessionOpOptions & { readonly into: Uint8Array }): Promise<ReadResult> {
    checkId(sessionId);
    checkTokens('tokenStart', range?.tokenStart);
    checkTokens('tokenEnd', range.tokenEnd);
    if (!(options?.into instanceof Uint8Array))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `read of session '${sessionId}': into must be a Uint8Array`);
    const timeoutMs = this.deadline(options);
    const conn = await this.ctx.pool.acquire(timeoutMs);
    try {
      const wire = { sessionId, tokenStart: range.tokenStart, tokenEnd: range.tokenEnd, expectHash: options.expectHash, timeoutMs };
      const r = await conn.sessionRead(wire, options.into, options.signal);
      return { sessionId, bytes: r.bytes, hit: r.hit };
    } finally {
      this.ctx.pool.release(conn);
    }
  }

  /** Drops the tokens from `tokenEnd` on. @throws TC_ERR_SOURCE_RANGE, TC_ERR_CONFLICT, TC_ERR_INCOMPATIBLE, TC_ERR_NOT_FOUND */
  truncate(sessionId: string, tokenEnd: number, options: SessionOpOptions = {}): Promise<SessionStat> {
    checkId(sessionId);
    checkTokens('tokenEnd', tokenEnd);
    const body = { tokenEnd, ...(options.expectHash === undefined ? {} : { expectHash: options.expectHash }) };
    return this.ctx.control.json<SessionStat>('POST', truncatePath(sessionId), body, options.timeoutMs);
  }

  /** Removes the session from every tier. @throws TC_ERR_NOT_FOUND, TC_ERR_CONFLICT, TC_ERR_INCOMPATIBLE (expectHash) */
  async close(sessionId: string, options: SessionOpOptions = {}): Promise<void> {
    checkId(sessionId);
    const q = options.expectHash === undefined ? '' : `?${new URLSearchParams({ expectHash: options.expectHash }).toString()}`;
    await this.ctx.control.json('DELETE', `${sessionPath(sessionId)}${q}`, undefined, options.timeoutMs);
  }

  /** Sessions ordered by id, after `after`, at most `limit` (every page fetched). */
  async list(options: { readonly after?: string; readonly limit?: number } = {}): Promise<SessionStat[]> {
    if (options.limit !== undefined && !(Number.isSafeInteger(options.limit) && options.limit >= 0))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `list: limit must be a non-negative integer, got ${String(options.limit)}`);
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const out: SessionStat[] = [];
    let after = options.after;
    while (out.length < limit) {
      const q = new URLSearchParams({ limit: String(Math.min(LIST_PAGE, limit - out.length)) });
      if (after !== undefined) q.set('after', after);
      const page = await this.ctx.control.json<SessionPage<SessionStat>>('GET', `${SESSIONS_PATH}?${q.toString()}`);
      out.push(...page.sessions.slice(0, limit - out.length));
      if (page.next === null || page.sessions.length === 0) break;
      after = page.next;
    }
    return out;
  }

  /** @throws TC_ERR_NOT_FOUND */
  stat(sessionId: string): Promise<SessionStat> {
    checkId(sessionId);
    return this.ctx.control.json<SessionStat>('GET', sessionPath(sessionId));
  }

  /** Drops the session's hot copies on the daemon (its bytes stay in the cold tier). */
  swapOut(sessionId: string): Promise<SwapResult> {
    checkId(sessionId);
    return this.ctx.control.json<SwapResult>('POST', swapOutPath(sessionId));
  }

  /** Brings the session into the daemon's hot tier. @throws TC_ERR_BUDGET when it cannot fit */
  swapIn(sessionId: string): Promise<SwapResult> {
    checkId(sessionId);
    return this.ctx.control.json<SwapResult>('POST', swapInPath(sessionId));
  }

  /** Deletes cold objects no session references. */
  gc(): Promise<GcResult> {
    return this.ctx.control.json<GcResult>('POST', SESSION_GC_PATH);
  }

  /** The daemon's cache counters. */
  stats(): Promise<SessionCacheStats> {
    return this.ctx.control.json<SessionCacheStats>('GET', SESSION_CACHE_STATS_PATH);
  }

  /** Nothing to stop: the daemon's cache lives on; the connections belong to the client (close it). */
  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  private deadline(options: SessionOpOptions): number {
    checkTimeout(options.timeoutMs);
    return options.timeoutMs ?? this.timeoutMs;
  }
}

function checkId(sessionId: string): void {
  if (typeof sessionId !== 'string' || !SESSION_ID_PATTERN.test(sessionId))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `'${String(sessionId)}' is no session id (1..128 characters of A-Z a-z 0-9 _ . : @ + -)`);
}

function checkTokens(name: string, v: number | undefined): void {
  if (!(Number.isSafeInteger(v) && (v as number) >= 0))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${name} must be a non-negative integer, got ${String(v)}`);
}

function checkTimeout(timeoutMs: number | undefined): void {
  if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs > 0 && timeoutMs < 2 ** 31))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `timeoutMs must be a positive integer below 2^31, got ${String(timeoutMs)}`);
}

// The lease, fencing and compare-and-swap rules every session metadata store applies the same way. Memory,
// SQLite and PostgreSQL run these functions on the record they hold locked; Redis re-decides the same rules
// inside its Lua scripts and builds its errors here from what they report.

import { tcError, type TensorcastError } from '../../core/errors.js';
import { checkGeometry, geometryHash, type SessionGeometry } from '../geometry.js';
import { SESSION_ID_PATTERN, type SessionEntry, type SessionLease, type SessionRecord } from '../session-types.js';
import type { SessionChange, SessionListOptions } from './session-meta-store.js';

/** Records per `list` page when no limit is given. */
export const DEFAULT_SESSION_LIST_LIMIT = 1000;
/** Largest `list` page. */
export const MAX_SESSION_LIST_LIMIT = 10_000;
/** Longest lease (one day): a lease is renewed, not taken for ever. */
export const MAX_LEASE_TTL_MS = 86_400_000;
/** Most entries one session may hold (bounds the record's JSON). */
export const MAX_SESSION_ENTRIES = 100_000;

/** @throws TC_ERR_INVALID_ARGUMENT unless `sessionId` matches SESSION_ID_PATTERN */
export function checkSessionId(sessionId: string): void {
  if (typeof sessionId !== 'string' || !SESSION_ID_PATTERN.test(sessionId)) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `session id '${String(sessionId)}' must be 1..128 characters of [A-Za-z0-9_.:@+-]`, {
      details: { sessionId: String(sessionId) },
    });
  }
}

/** @throws TC_ERR_INVALID_ARGUMENT unless `ttlMs` is an integer in 1..MAX_LEASE_TTL_MS */
export function checkTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_LEASE_TTL_MS) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `lease ttl must be an integer of ms in 1..${MAX_LEASE_TTL_MS}, not ${String(ttlMs)}`);
  }
}

/** @throws TC_ERR_INVALID_ARGUMENT for an owner that is not 1..256 characters */
export function checkOwner(owner: string): void {
  if (typeof owner !== 'string' || owner.length === 0 || owner.length > 256) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', 'a lease owner must be 1..256 characters');
  }
}

/** @throws TC_ERR_INVALID_ARGUMENT for a malformed lease */
export function checkLease(lease: SessionLease): void {
  if (typeof lease !== 'object' || lease === null) throw tcError('TC_ERR_INVALID_ARGUMENT', 'a lease must be an object');
  checkSessionId(lease.sessionId);
  checkOwner(lease.owner);
  if (!Number.isSafeInteger(lease.fence) || lease.fence < 1) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `a lease's fence must be a positive integer, not ${String(lease.fence)}`);
  }
}

/**
 * Checks what `create` is given and returns the geometry with defaults filled.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for a bad id or geometry, or a hash that is not the geometry's
 */
export function checkCreate(sessionId: string, geometry: SessionGeometry, hash: string): Required<SessionGeometry> {
  checkSessionId(sessionId);
  const checked = checkGeometry(geometry);
  const expected = geometryHash(checked);
  if (hash !== expected) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `geometry hash '${String(hash)}' is not the hash of the geometry (${expected})`, {
      details: { sessionId, expected, actual: String(hash) },
    });
  }
  return checked;
}

/** The limit a `list` call uses. @throws TC_ERR_INVALID_ARGUMENT */
export function listLimit(options: SessionListOptions): number {
  const limit = options.limit ?? DEFAULT_SESSION_LIST_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_SESSION_LIST_LIMIT) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `list limit must be an integer in 1..${MAX_SESSION_LIST_LIMIT}, not ${String(limit)}`);
  }
  if (options.after !== undefined && typeof options.after !== 'string') {
    throw tcError('TC_ERR_INVALID_ARGUMENT', 'list `after` must be a session id');
  }
  return limit;
}

/** Session ids are ASCII: code-unit order is byte order (PostgreSQL's "C" collation, SQLite's BINARY). */
export function compareSessionIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Checks a change: entries contiguous from token 0, each with a positive length, `tokens` their end. Returns
 * plain copies (the caller may reuse its objects).
 *
 * @throws TC_ERR_INVALID_ARGUMENT naming the first bad entry
 */
export function checkChange(change: SessionChange): SessionEntry[] {
  const bad = (why: string): TensorcastError => tcError('TC_ERR_INVALID_ARGUMENT', `session change: ${why}`);
  if (typeof change !== 'object' || change === null || !isArray(change.entries)) throw bad('entries must be an array');
  const entries: readonly SessionEntry[] = change.entries;
  if (entries.length > MAX_SESSION_ENTRIES) throw bad(`more than ${MAX_SESSION_ENTRIES} entries`);
  let end = 0;
  const out: SessionEntry[] = [];
  for (const [i, e] of entries.entries()) {
    const where = `entry ${i}`;
    if (typeof e !== 'object' || e === null) throw bad(`${where} is not an object`);
    if (e.tokenOffset !== end)
      throw bad(`${where} starts at token ${String(e.tokenOffset)}, not at ${end} (entries must be contiguous from 0)`);
    for (const field of ['tokenLength', 'bytes'] as const) {
      if (!Number.isSafeInteger(e[field]) || e[field] < 1) throw bad(`${where}: ${field} must be a positive integer`);
    }
    if (!Number.isInteger(e.crc32c) || e.crc32c < 0 || e.crc32c > 0xffffffff)
      throw bad(`${where}: crc32c must be a 32-bit unsigned integer`);
    if (typeof e.connector !== 'string' || typeof e.uri !== 'string' || e.uri.length === 0)
      throw bad(`${where}: connector and uri must be strings`);
    if (e.hot !== undefined && (typeof e.hot !== 'object' || e.hot === null || typeof e.hot.holder !== 'string')) {
      throw bad(`${where}: hot must be {holder}`);
    }
    end += e.tokenLength;
    const entry: SessionEntry = {
      tokenOffset: e.tokenOffset,
      tokenLength: e.tokenLength,
      connector: e.connector,
      uri: e.uri,
      bytes: e.bytes,
      crc32c: e.crc32c,
      ...(e.hot === undefined ? {} : { hot: { holder: e.hot.holder } }),
    };
    out.push(entry);
  }
  if (change.tokens !== end) throw bad(`tokens is ${String(change.tokens)} but the entries end at ${end}`);
  return out;
}

function isArray(value: unknown): boolean {
  return Array.isArray(value);
}

/** A fresh record for `create`. */
export function newRecord(sessionId: string, geometry: Required<SessionGeometry>, hash: string, nowMs: number): SessionRecord {
  return {
    sessionId,
    geometry,
    geometryHash: hash,
    tokens: 0,
    entries: [],
    version: 0,
    fence: 0,
    lease: null,
    createdAtMs: nowMs,
    updatedAtMs: nowMs,
  };
}

/** The record's lease if it has not expired at `nowMs`. */
export function liveLease(record: SessionRecord, nowMs: number): SessionLease | null {
  return record.lease !== null && record.lease.expiresAtMs > nowMs ? record.lease : null;
}

/**
 * True when `lease` is the session's current lease: the one the record holds, with its fence. An expired lease
 * nobody took over still counts (its fence is still the newest: no other writer can have written).
 */
export function isCurrentLease(record: SessionRecord, lease: SessionLease): boolean {
  return record.lease !== null && record.lease.fence === lease.fence && record.lease.owner === lease.owner;
}

/** TC_ERR_NOT_FOUND for a session id. */
export function sessionNotFound(sessionId: string): TensorcastError {
  return tcError('TC_ERR_NOT_FOUND', `no session '${sessionId}'`, { details: { sessionId } });
}

/** TC_ERR_CONFLICT for `create` of an id that exists. */
export function sessionExists(sessionId: string): TensorcastError {
  return tcError('TC_ERR_CONFLICT', `session '${sessionId}' already exists`, { details: { sessionId, reason: 'exists' } });
}

/** TC_ERR_CONFLICT: another owner holds the session's lease. */
export function leaseHeld(sessionId: string, holder: string, expiresAtMs: number): TensorcastError {
  return tcError('TC_ERR_CONFLICT', `session '${sessionId}' is leased by '${holder}' until ${new Date(expiresAtMs).toISOString()}`, {
    details: { sessionId, reason: 'leased', holder, expiresAtMs },
  });
}

/** TC_ERR_CONFLICT: `lease` is not the session's current lease (taken over, released or replaced). */
export function staleLease(lease: SessionLease, currentFence: number): TensorcastError {
  return tcError(
    'TC_ERR_CONFLICT',
    `the lease of '${lease.owner}' on session '${lease.sessionId}' (fence ${lease.fence}) is no longer current (fence ${currentFence})`,
    {
      details: { sessionId: lease.sessionId, reason: 'stale_lease', fence: lease.fence, currentFence },
    },
  );
}

/** TC_ERR_CONFLICT: the session's version moved since the writer read it. */
export function staleVersion(sessionId: string, expectedVersion: number, version: number): TensorcastError {
  return tcError('TC_ERR_CONFLICT', `session '${sessionId}' is at version ${version}, not ${expectedVersion}`, {
    details: { sessionId, reason: 'version', expectedVersion, version },
  });
}

/**
 * The record after `owner` acquires the session's lease at `nowMs`.
 *
 * @throws TC_ERR_CONFLICT when another owner holds a live lease
 */
export function decideAcquire(record: SessionRecord, owner: string, ttlMs: number, nowMs: number): SessionRecord {
  const live = liveLease(record, nowMs);
  if (live !== null && live.owner !== owner) throw leaseHeld(record.sessionId, live.owner, live.expiresAtMs);
  const fence = record.fence + 1;
  return { ...record, fence, lease: { sessionId: record.sessionId, owner, fence, expiresAtMs: nowMs + ttlMs } };
}

/**
 * The record after `lease` is renewed.
 *
 * @throws TC_ERR_CONFLICT when it is not the current lease
 */
export function decideRenew(record: SessionRecord, lease: SessionLease, ttlMs: number, nowMs: number): SessionRecord {
  if (!isCurrentLease(record, lease)) throw staleLease(lease, record.fence);
  return { ...record, lease: { ...lease, expiresAtMs: nowMs + ttlMs } };
}

/**
 * The record after an update under `lease`.
 *
 * @throws TC_ERR_CONFLICT for a stale lease or version
 */
export function decideUpdate(
  record: SessionRecord,
  lease: SessionLease,
  expectedVersion: number,
  entries: SessionEntry[],
  nowMs: number,
): SessionRecord {
  if (!isCurrentLease(record, lease)) throw staleLease(lease, record.fence);
  if (record.version !== expectedVersion) throw staleVersion(record.sessionId, expectedVersion, record.version);
  const tokens = entries.reduce((sum, e) => sum + e.tokenLength, 0);
  return { ...record, entries, tokens, version: record.version + 1, updatedAtMs: nowMs };
}

/**
 * Whether `remove` may proceed: with a lease, it must be the current one; without, no live lease may be held.
 *
 * @throws TC_ERR_CONFLICT otherwise
 */
export function checkRemove(record: SessionRecord, lease: SessionLease | undefined, nowMs: number): void {
  if (lease !== undefined) {
    if (!isCurrentLease(record, lease)) throw staleLease(lease, record.fence);
    return;
  }
  const live = liveLease(record, nowMs);
  if (live !== null) throw leaseHeld(record.sessionId, live.owner, live.expiresAtMs);
}

// Argument checks of the session cache's operations and the stat it answers: bad input is refused with a
// coded error naming what was wrong before anything moves (docs/sessions.md "Model").

import { tcError } from '../core/errors.js';
import { bytesPerToken } from './geometry.js';
import type { TokenRange } from './session-cache-api.js';
import type { SessionLru } from './session-lru.js';
import type { SessionRecord, SessionStat } from './session-types.js';
import { SESSION_ID_PATTERN } from './session-types.js';

/** @throws TC_ERR_INVALID_ARGUMENT for an id outside SESSION_ID_PATTERN */
export function checkId(sessionId: string): void {
  if (typeof sessionId !== 'string' || !SESSION_ID_PATTERN.test(sessionId)) {
    throw tcError(
      'TC_ERR_INVALID_ARGUMENT',
      `session id ${JSON.stringify(sessionId)} must be 1..128 characters of A-Z a-z 0-9 _ . : @ + -`,
      {
        details: { sessionId: String(sessionId) },
      },
    );
  }
}

/** @throws TC_ERR_NOT_FOUND */
export function mustExist(sessionId: string, record: SessionRecord | undefined): SessionRecord {
  if (record === undefined) throw tcError('TC_ERR_NOT_FOUND', `no session '${sessionId}'`, { details: { sessionId } });
  return record;
}

/** @throws TC_ERR_INCOMPATIBLE when `expectHash` is given and is not the session's geometry hash */
export function checkHash(record: SessionRecord, expectHash: string | undefined): void {
  if (expectHash === undefined || expectHash === record.geometryHash) return;
  throw tcError(
    'TC_ERR_INCOMPATIBLE',
    `session '${record.sessionId}' has KV geometry ${record.geometryHash}, the caller expects ${String(expectHash)}`,
    { details: { sessionId: record.sessionId, expected: String(expectHash), actual: record.geometryHash } },
  );
}

/** @throws TC_ERR_INVALID_ARGUMENT when `value` is not a non-negative safe integer */
export function checkTokenCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${what} must be a non-negative integer (got ${String(value)})`, {
      details: { [what]: String(value) },
    });
  }
}

/**
 * Checks an append of `size` bytes at `tokenOffset` against the session; answers its token count.
 *
 * @throws TC_ERR_INVALID_ARGUMENT with details.reason 'partial_token' | 'empty' | 'gap' | 'overlap'
 */
export function checkAppend(record: SessionRecord, tokenOffset: number, size: number): number {
  const id = record.sessionId;
  const bpt = bytesPerToken(record.geometry);
  const bad = (reason: string, message: string): Error =>
    tcError('TC_ERR_INVALID_ARGUMENT', `append to session '${id}': ${message}`, {
      details: { sessionId: id, reason, tokenOffset, tokens: record.tokens, bytes: size },
    });
  if (size === 0) throw bad('empty', 'no bytes to append');
  if (size % bpt !== 0) throw bad('partial_token', `${size} bytes are not whole tokens of ${bpt} bytes`);
  if (tokenOffset > record.tokens) throw bad('gap', `token offset ${tokenOffset} leaves a gap after the session's end ${record.tokens}`);
  if (tokenOffset < record.tokens)
    throw bad('overlap', `token offset ${tokenOffset} overlaps the session's tokens (it ends at ${record.tokens})`);
  return size / bpt;
}

/**
 * Checks a read range against the session; answers its bytes.
 *
 * @throws TC_ERR_SOURCE_RANGE (empty, reversed or beyond the end); TC_ERR_INVALID_ARGUMENT (not integers)
 */
export function checkRange(record: SessionRecord, range: TokenRange): number {
  if (typeof range !== 'object' || range === null) throw tcError('TC_ERR_INVALID_ARGUMENT', 'a read needs a range {tokenStart, tokenEnd}');
  const { tokenStart, tokenEnd } = range;
  checkTokenCount(tokenStart, 'tokenStart');
  checkTokenCount(tokenEnd, 'tokenEnd');
  if (tokenEnd <= tokenStart || tokenEnd > record.tokens) {
    throw tcError(
      'TC_ERR_SOURCE_RANGE',
      `session '${record.sessionId}' holds tokens 0..${record.tokens}; tokens ${tokenStart}..${tokenEnd} are ${tokenEnd <= tokenStart ? 'an empty or reversed range' : 'beyond its end'}`,
      { details: { sessionId: record.sessionId, tokenStart, tokenEnd, tokens: record.tokens } },
    );
  }
  return (tokenEnd - tokenStart) * bytesPerToken(record.geometry);
}

/** The destination of a read. @throws TC_ERR_INVALID_ARGUMENT; TC_ERR_DESTINATION_SIZE */
export function checkInto(into: unknown, bytes: number, sessionId: string): asserts into is Uint8Array {
  if (!(into instanceof Uint8Array)) throw tcError('TC_ERR_INVALID_ARGUMENT', 'a read needs options.into, a Uint8Array');
  if (into.length !== bytes) {
    throw tcError('TC_ERR_DESTINATION_SIZE', `session '${sessionId}': the range holds ${bytes} bytes, options.into has ${into.length}`, {
      details: { sessionId, expected: bytes, actual: into.length },
    });
  }
}

/** What `stat` answers for `record`, residency as seen by this instance. */
export function statOf(record: SessionRecord, lru: SessionLru): SessionStat {
  const slot = lru.peek(record.sessionId);
  let hotBytes = 0;
  let hotEntries = 0;
  for (const e of record.entries) {
    if (slot?.copies.has(e.uri) === true) {
      hotBytes += e.bytes;
      hotEntries++;
    }
  }
  const residency = record.entries.length > 0 && hotEntries === record.entries.length ? 'hot' : hotEntries === 0 ? 'cold' : 'partial';
  return {
    sessionId: record.sessionId,
    geometryHash: record.geometryHash,
    modelId: record.geometry.modelId,
    tokens: record.tokens,
    bytes: record.entries.reduce((sum, e) => sum + e.bytes, 0),
    entries: record.entries.length,
    hotBytes,
    residency,
    version: record.version,
    createdAtMs: record.createdAtMs,
    updatedAtMs: record.updatedAtMs,
  };
}

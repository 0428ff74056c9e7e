// Reading a token range of a session: piece by piece over its entries, from this instance's hot copies where
// it has them, else from the cold tier (whole entries, CRC32C checked). Objects are immutable, so a reader
// needs no lease; one that loses a race with a truncate or close (an object deleted under it) retries once
// from a fresh record (docs/sessions.md "Metadata stores and consistency").

import { Limiter } from '../core/async.js';
import { isTensorcastError } from '../core/errors.js';
import type { Connector } from '../connectors/connector.js';
import { readEntryInto } from './cold-objects.js';
import { bytesPerToken } from './geometry.js';
import type { TokenRange } from './session-cache-api.js';
import { checkRange } from './session-checks.js';
import type { SessionSlot } from './session-lru.js';
import type { SessionEntry, SessionRecord } from './session-types.js';

/** Cold entries read at once by one read. */
const COLD_READ_CONCURRENCY = 4;

/** The part of one entry a range covers. */
export interface RangePiece {
  readonly entry: SessionEntry;
  /** Bytes [from, to) of the entry. */
  readonly from: number;
  readonly to: number;
  /** Where the piece starts in the range's bytes. */
  readonly at: number;
  /** The first token of the piece. */
  readonly tokenStart: number;
}

/** The pieces of `range` (checked against `record` by the caller), in order. */
export function rangePieces(record: SessionRecord, range: TokenRange): RangePiece[] {
  const bpt = bytesPerToken(record.geometry);
  const out: RangePiece[] = [];
  let at = 0;
  for (const entry of record.entries) {
    const start = Math.max(range.tokenStart, entry.tokenOffset);
    const end = Math.min(range.tokenEnd, entry.tokenOffset + entry.tokenLength);
    if (start >= end) continue;
    const from = (start - entry.tokenOffset) * bpt;
    const to = (end - entry.tokenOffset) * bpt;
    out.push({ entry, from, to, at, tokenStart: start });
    at += to - from;
  }
  return out;
}

/** True when the error means an object was deleted under the reader (a truncate or close won the race). */
export const vanished = (error: unknown): boolean => isTensorcastError(error, 'TC_ERR_NOT_FOUND');

/** The bytes of `piece` from the cold tier: its whole entry is read and checked, the piece is a view of it. */
async function coldPiece(cold: Connector, sessionId: string, piece: RangePiece, dest?: Uint8Array): Promise<Uint8Array> {
  const whole = piece.from === 0 && piece.to === piece.entry.bytes;
  const buf = whole && dest !== undefined ? dest : Buffer.allocUnsafeSlow(piece.entry.bytes);
  await readEntryInto(cold, sessionId, piece.entry, buf);
  return whole ? buf : buf.subarray(piece.from, piece.to);
}

/**
 * Copies the bytes of `range` into `into`: hot pieces from `slot`'s copies, cold ones read (a covered entry
 * straight into `into`).
 *
 * @throws the connector's errors; TC_ERR_CHECKSUM
 */
export async function fillRange(
  cold: Connector,
  slot: SessionSlot,
  record: SessionRecord,
  range: TokenRange,
  into: Uint8Array,
): Promise<void> {
  const limiter = new Limiter(COLD_READ_CONCURRENCY);
  const coldReads: Promise<void>[] = [];
  for (const piece of rangePieces(record, range)) {
    const copy = slot.copies.get(piece.entry.uri);
    const dest = into.subarray(piece.at, piece.at + (piece.to - piece.from));
    if (copy !== undefined) {
      dest.set(copy.subarray(piece.from, piece.to));
      continue;
    }
    coldReads.push(
      limiter.run(async () => {
        const bytes = await coldPiece(cold, record.sessionId, piece, dest);
        if (bytes !== dest) dest.set(bytes);
      }),
    );
  }
  const results = await Promise.allSettled(coldReads);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/**
 * The bytes of `range` in order, as views of hot copies or of buffers read from cold. When an object
 * vanished, `refresh` gives a fresh record once and the stream continues from the piece it stopped at.
 */
export async function* streamRange(
  cold: Connector,
  slot: SessionSlot,
  record: SessionRecord,
  range: TokenRange,
  refresh: () => Promise<SessionRecord>,
): AsyncGenerator<Uint8Array> {
  let current = record;
  let tokenStart = range.tokenStart;
  let retried = false;
  for (;;) {
    const remaining = { tokenStart, tokenEnd: range.tokenEnd };
    try {
      for (const piece of rangePieces(current, remaining)) {
        const copy = slot.copies.get(piece.entry.uri);
        const bytes = copy !== undefined ? copy.subarray(piece.from, piece.to) : await coldPiece(cold, current.sessionId, piece);
        tokenStart = piece.tokenStart + (piece.to - piece.from) / bytesPerToken(current.geometry);
        yield bytes;
      }
      return;
    } catch (error) {
      if (retried || !vanished(error)) throw error;
      retried = true;
      current = await refresh();
      checkRange(current, remaining);
    }
  }
}

// The cold tier's object keys and checked reads. Every entry is one immutable object
// `sessions/<sessionId>/<tokenOffset>-<tokenLength>-<writtenAtMs base 36>.<random hex>`: the write time lets
// gc spare objects of appends still in flight elsewhere (docs/sessions.md "gc").

import { randomBytes } from 'node:crypto';
import { crc32cAsync } from '../bytes/crc32c.js';
import { crc32cCombine } from '../bytes/crc32c-combine.js';
import { allSettledOrThrow } from '../core/async.js';
import { tcError } from '../core/errors.js';
import type { Connector } from '../connectors/connector.js';
import type { SessionEntry } from './session-types.js';

/** The prefix under which every session object lives. */
export const SESSIONS_PREFIX = 'sessions/';

/** The key segment of a session id ('.' and '..' are not valid key segments: their dots are escaped). */
function idSegment(sessionId: string): string {
  return sessionId === '.' || sessionId === '..' ? sessionId.replaceAll('.', '%2E') : sessionId;
}

/** The prefix of one session's objects. */
export function sessionPrefix(sessionId: string): string {
  return `${SESSIONS_PREFIX}${idSegment(sessionId)}/`;
}

/**
 * A fresh key for the bytes of tokens [tokenOffset, tokenOffset + tokenLength) of a session.
 *
 * @example coldKey('chat-1', 0, 512) // 'sessions/chat-1/0-512-m3x1k2a0.9f8e7d6c5b4a'
 */
export function coldKey(sessionId: string, tokenOffset: number, tokenLength: number, nowMs = Date.now()): string {
  return `${sessionPrefix(sessionId)}${tokenOffset}-${tokenLength}-${nowMs.toString(36)}.${randomBytes(6).toString('hex')}`;
}

const KEY_TAIL = /\/(\d+)-(\d+)-([0-9a-z]+)\.[0-9a-f]+$/;

/** When an object of `coldKey` was written (ms since the epoch), or undefined for a key not of that form. */
export function writtenAtMs(key: string): number | undefined {
  const match = KEY_TAIL.exec(key);
  if (match === null || !key.startsWith(SESSIONS_PREFIX)) return undefined;
  const ms = parseInt(match[3]!, 36);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/**
 * Reads the whole of `entry` from `cold` into `dest` (exactly `entry.bytes` long) and checks its CRC32C.
 *
 * @throws TC_ERR_CHECKSUM when the bytes do not match the entry's CRC32C; the connector's errors
 *   (TC_ERR_NOT_FOUND when the object is gone, TC_ERR_SHORT_READ, TC_ERR_BACKEND)
 */
export async function readEntryInto(cold: Connector, sessionId: string, entry: SessionEntry, dest: Uint8Array): Promise<void> {
  const crc = await readChecksummed(cold, entry.uri, dest);
  if (crc !== entry.crc32c) {
    throw tcError(
      'TC_ERR_CHECKSUM',
      `session '${sessionId}': the cold copy of tokens ${entry.tokenOffset}..${entry.tokenOffset + entry.tokenLength} ('${entry.uri}') fails its CRC32C`,
      { details: { sessionId, key: entry.uri, expected: entry.crc32c, actual: crc } },
    );
  }
}

/** Bytes of one ranged read of a large entry (16 MiB parts, four at once, measured best on file://). */
const READ_PART_BYTES = 16 * 1024 * 1024;
/** Ranged reads of one entry in flight. */
const READ_PARTS_IN_FLIGHT = 4;

/**
 * Reads all of `dest` from `key` and answers its CRC32C. A large object is read in parts, several at once,
 * each checksummed on the libuv pool as soon as it lands: the check costs next to nothing beyond the read.
 */
async function readChecksummed(cold: Connector, key: string, dest: Uint8Array): Promise<number> {
  if (dest.length <= READ_PART_BYTES) {
    await cold.readInto(key, 0, dest);
    return crc32cAsync(dest);
  }
  const parts = Math.ceil(dest.length / READ_PART_BYTES);
  const crcs = new Array<number>(parts);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < parts) {
      const i = next++;
      const part = dest.subarray(i * READ_PART_BYTES, Math.min(dest.length, (i + 1) * READ_PART_BYTES));
      try {
        await cold.readInto(key, i * READ_PART_BYTES, part);
        crcs[i] = await crc32cAsync(part);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await allSettledOrThrow(Array.from({ length: Math.min(READ_PARTS_IN_FLIGHT, parts) }, worker));
  let crc = crcs[0]!;
  for (let i = 1; i < parts; i++) crc = crc32cCombine(crc, crcs[i]!, Math.min(READ_PART_BYTES, dest.length - i * READ_PART_BYTES));
  return crc;
}

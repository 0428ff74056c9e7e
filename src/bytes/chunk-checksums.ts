// CRC32C per fixed-size chunk of a byte space: the daemon computes them as it writes a shared-memory
// replica, and the client checks what it read from the file against them (as TCP frames carry a CRC).

import { crc32c } from './crc32c.js';
import { native } from './native.js';
import { errorFromWire, tcError } from '../core/errors.js';

/** Bytes covered by one checksum (the last chunk may be shorter). */
export const CHECKSUM_CHUNK_BYTES = 4 << 20;

/** Per-chunk checksums as they travel in a lease answer. */
export interface ChunkChecksums {
  readonly algorithm: 'crc32c';
  readonly chunkBytes: number;
  readonly crcs: readonly number[];
}

/**
 * Accumulates per-chunk CRC32C over bytes pushed in order, in pieces of any size.
 *
 * @example const c = new ChunkChecksummer(); c.push(a); c.push(b); const sums = c.finish();
 */
export class ChunkChecksummer {
  private readonly crcs: number[] = [];
  private running = 0;
  private inChunk = 0;

  constructor(readonly chunkBytes = CHECKSUM_CHUNK_BYTES) {}

  /** Adds the next bytes of the space. */
  push(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length;) {
      const n = Math.min(bytes.length - at, this.chunkBytes - this.inChunk);
      this.running = crc32c(bytes.subarray(at, at + n), this.running);
      this.inChunk += n;
      at += n;
      if (this.inChunk === this.chunkBytes) {
        this.crcs.push(this.running);
        this.running = 0;
        this.inChunk = 0;
      }
    }
  }

  /** The checksums of the whole chunks pushed so far. */
  get completed(): readonly number[] {
    return this.crcs;
  }

  /** The checksums of everything pushed. */
  finish(): ChunkChecksums {
    const crcs = this.inChunk > 0 ? [...this.crcs, this.running] : [...this.crcs];
    return { algorithm: 'crc32c', chunkBytes: this.chunkBytes, crcs };
  }
}

/**
 * Checks that `sums` describe a space of `totalBytes` (one CRC32C per chunk).
 *
 * @throws TC_ERR_PROTOCOL when they do not
 */
export function checkSums(sums: ChunkChecksums, totalBytes: number, where: string): void {
  const size = sums.chunkBytes;
  if (sums.algorithm !== 'crc32c' || !(size > 0) || sums.crcs.length !== Math.ceil(totalBytes / size)) {
    throw tcError('TC_ERR_PROTOCOL', `${where}: checksums do not describe ${totalBytes} bytes in chunks of ${size}`);
  }
}

/**
 * Checks bytes `[start, start + bytes.length)` of a space against its checksums; the range must start and
 * end on chunk boundaries (or at the end of the space, `totalBytes`).
 *
 * @throws TC_ERR_CHECKSUM naming the first chunk that differs; TC_ERR_PROTOCOL for checksums that do not
 *   describe a space of `totalBytes`.
 */
export function verifyChunks(sums: ChunkChecksums, totalBytes: number, start: number, bytes: Uint8Array, where: string): void {
  checkSums(sums, totalBytes, where);
  const size = sums.chunkBytes;
  for (let at = 0; at < bytes.length; at += size) {
    const chunk = (start + at) / size;
    const piece = bytes.subarray(at, Math.min(bytes.length, at + size));
    if (!Number.isInteger(chunk) || (piece.length < size && start + at + piece.length !== totalBytes)) {
      throw tcError('TC_ERR_INTERNAL', `${where}: range [${start + at}, ${start + at + piece.length}) is not a whole chunk`);
    }
    if (crc32c(piece) !== sums.crcs[chunk]) throw checksumError(where, start + at, piece.length);
  }
}

/** The error of bytes `[offset, offset + length)` that failed their CRC32C. */
export function checksumError(where: string, offset: number, length: number): Error {
  return tcError(
    'TC_ERR_CHECKSUM',
    `${where}: bytes [${offset}, ${offset + length}) failed their CRC32C; the shared-memory file was changed`,
    {
      details: { offset, length },
    },
  );
}

/** Jobs one {@link checksumChunks} call splits into (the libuv pool runs them on several cores). */
const CHECKSUM_JOBS = 2;

/**
 * CRC32C of each `chunkBytes` chunk of `src` into `out` (one per chunk, the last chunk may be shorter),
 * copying `src` into `copyTo` (as long as `src`) on the way when given: the bytes are checksummed while the
 * copy left them in cache. With the addon this runs on the libuv pool, split across cores, and the caller's
 * thread stays free; `src`, `copyTo` and `out` must not change until the promise settles.
 *
 * @example const out = new Uint32Array(Math.ceil(view.length / CHECKSUM_CHUNK_BYTES)); await checksumChunks(view, CHECKSUM_CHUNK_BYTES, out);
 */
export async function checksumChunks(src: Uint8Array, chunkBytes: number, out: Uint32Array, copyTo?: Uint8Array): Promise<void> {
  const chunks = Math.ceil(src.length / chunkBytes);
  if (out.length !== chunks || (copyTo !== undefined && copyTo.length !== src.length))
    throw tcError('TC_ERR_INTERNAL', `checksumChunks: ${out.length} sums for ${chunks} chunks, or a copy target of another length`);
  if (native === undefined) {
    copyTo?.set(src);
    for (let i = 0; i < chunks; i++) out[i] = crc32c((copyTo ?? src).subarray(i * chunkBytes, (i + 1) * chunkBytes));
    return;
  }
  const per = Math.ceil(chunks / CHECKSUM_JOBS);
  const jobs: Promise<void>[] = [];
  for (let c = 0; c < chunks; c += per) {
    const from = c * chunkBytes;
    const to = Math.min(src.length, (c + per) * chunkBytes);
    const sums = out.subarray(c, Math.min(chunks, c + per));
    jobs.push(native.crcChunks(src.subarray(from, to), chunkBytes, sums, copyTo?.subarray(from, to)));
  }
  // Every job settles before this returns, so none still reads or writes the buffers after a failure.
  const results = await Promise.allSettled(jobs);
  for (const r of results) if (r.status === 'rejected') throw codedError(r.reason);
}

/** The addon rejects with plain Errors carrying a `TC_ERR_*` code: give callers the tensorcast error class. */
function codedError(reason: unknown): unknown {
  const e = reason as { code?: unknown; message?: unknown } | null;
  return typeof e?.code === 'string' && e.code.startsWith('TC_ERR_')
    ? errorFromWire(e.code, e.message, 'native kernel failed', { cause: reason })
    : reason;
}

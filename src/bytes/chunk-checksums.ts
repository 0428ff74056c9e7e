// CRC32C per fixed-size chunk of a byte space: the daemon computes them as it writes a shared-memory
// replica, and the client checks what it read from the file against them (as TCP frames carry a CRC).

import { crc32c } from './crc32c.js';
import { tcError } from '../core/errors.js';

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

  /** The checksums of everything pushed. */
  finish(): ChunkChecksums {
    const crcs = this.inChunk > 0 ? [...this.crcs, this.running] : [...this.crcs];
    return { algorithm: 'crc32c', chunkBytes: this.chunkBytes, crcs };
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
  const size = sums.chunkBytes;
  if (sums.algorithm !== 'crc32c' || !(size > 0) || sums.crcs.length !== Math.ceil(totalBytes / size)) {
    throw tcError('TC_ERR_PROTOCOL', `${where}: checksums do not describe ${totalBytes} bytes in chunks of ${size}`);
  }
  for (let at = 0; at < bytes.length; at += size) {
    const chunk = (start + at) / size;
    const piece = bytes.subarray(at, Math.min(bytes.length, at + size));
    if (!Number.isInteger(chunk) || (piece.length < size && start + at + piece.length !== totalBytes)) {
      throw tcError('TC_ERR_INTERNAL', `${where}: range [${start + at}, ${start + at + piece.length}) is not a whole chunk`);
    }
    if (crc32c(piece) !== sums.crcs[chunk]) {
      throw tcError(
        'TC_ERR_CHECKSUM',
        `${where}: bytes [${start + at}, ${start + at + piece.length}) failed their CRC32C; the shared-memory file was changed`,
        { details: { offset: start + at, length: piece.length } },
      );
    }
  }
}

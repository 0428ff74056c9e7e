// The ByteSource interface: anything that reads canonical bytes at an offset into a caller's buffer.
// Sources that hold their bytes in memory also expose them directly, which enables direct gather.

import { tcError } from '../core/errors.js';

/**
 * Reads bytes of a canonical byte space.
 *
 * @example const n = await source.read(offset, dest); // n < dest.length only at the end of the source
 */
export interface ByteSource {
  /** Length of the byte space. */
  readonly byteLength: number;
  /**
   * Reads up to `dest.length` bytes at `offset` into `dest`; resolves with the count read. A count below
   * `dest.length` means the source ended or its backing store came up short.
   */
  read(offset: number, dest: Uint8Array): Promise<number>;
  /** The bytes of `[offset, offset + length)` in memory, when the source holds them there in one piece. */
  direct?(offset: number, length: number): Uint8Array | undefined;
  /**
   * Copies `rows` rows of `rowLength` bytes, `stride` apart from `offset`, into `dest` (densely) without
   * reading the bytes between rows (a file source maps the pages). Resolves false when it cannot for this
   * range; the caller then reads blocks and packs them.
   */
  readRows?(offset: number, rowLength: number, stride: number, rows: number, dest: Uint8Array): Promise<boolean>;
  /** Releases file handles and other resources. */
  close?(): Promise<void>;
}

/**
 * Reads exactly `dest.length` bytes at `offset`.
 *
 * @throws TC_ERR_SOURCE_RANGE when the range is outside the source; TC_ERR_SHORT_READ when fewer bytes came.
 */
export async function readExactly(source: ByteSource, offset: number, dest: Uint8Array): Promise<void> {
  checkRange(source, offset, dest.length);
  const n = await source.read(offset, dest);
  if (n !== dest.length) {
    throw tcError('TC_ERR_SHORT_READ', `short read: ${n} of ${dest.length} bytes at offset ${offset}`, {
      details: { offset, expected: dest.length, got: n },
    });
  }
}

/** @throws TC_ERR_SOURCE_RANGE when `[offset, offset + length)` is not inside `source`. */
export function checkRange(source: ByteSource, offset: number, length: number): void {
  if (!(offset >= 0 && length >= 0 && offset + length <= source.byteLength)) {
    throw tcError('TC_ERR_SOURCE_RANGE', `range [${offset}, ${offset + length}) is outside the source of ${source.byteLength} bytes`, {
      details: { offset, length },
    });
  }
}

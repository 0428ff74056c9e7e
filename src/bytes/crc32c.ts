// CRC32C (Castagnoli): the checksum of every data-plane frame and of every shm chunk. The native kernel
// (native/crc32c.c: the SSE4.2 instruction over three interleaved lanes, ~15 GB/s per core) runs when the
// addon is built; @node-rs/crc32 (~3-5 GB/s) otherwise. Both give the same values and chain the same way:
// crc32c(b, crc32c(a)) === crc32c(a || b).

import { crc32c as packageCrc32c } from '@node-rs/crc32';
import { native } from './native.js';

/** CRC32C of `data`, continuing from `initial` (the CRC of the bytes before it; 0 to start). */
export const crc32c: (data: Uint8Array, initial?: number) => number = native?.crc32c ?? ((data, initial) => packageCrc32c(data, initial));

/**
 * The same, computed on the libuv pool (the calling thread stays free; `data` must not change until the
 * promise settles). Without the addon it runs on the calling thread.
 */
export const crc32cAsync: (data: Uint8Array, initial?: number) => Promise<number> =
  native?.crc32cAsync ?? ((data, initial) => Promise.resolve(crc32c(data, initial)));

/** Which kernel runs: 'sse4.2', 'table' (native, portable) or 'package' (@node-rs/crc32). */
export const crc32cKernel: 'sse4.2' | 'table' | 'package' = native === undefined ? 'package' : native.crc32cHardware ? 'sse4.2' : 'table';

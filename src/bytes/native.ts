// The native addon (native/*.c, built by `npm install` with node-gyp): the strided-gather and CRC32C
// kernels, shm segment mappings and checked shm reads. Loaded once; undefined when it was not built or
// `TENSORCAST_NATIVE=0`, and every caller then runs its TypeScript (or npm package) fallback, which gives
// identical results.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatherFileFn, GatherFn } from './gather-kernel.js';

/** What the addon exports. */
export interface NativeModule {
  readonly gather: GatherFn;
  readonly gatherFile: GatherFileFn;
  readonly crc32c: (data: Uint8Array, initial?: number) => number;
  readonly crc32cAsync: (data: Uint8Array, initial?: number) => Promise<number>;
  /** The portable table kernel alone (tests check it on machines whose CPU has the instruction). */
  readonly crc32cPortable: (data: Uint8Array, initial?: number) => number;
  /** True when CRC32C runs on the CPU's instruction (SSE4.2), false for the portable table kernel. */
  readonly crc32cHardware: boolean;
  /** Maps `[offset, offset + length)` of a file shared and writable (shm segments); `populate` fills page tables now. */
  readonly mapFile: (fd: number, offset: number, length: number, populate: boolean) => ArrayBuffer;
  /** Resizes a mapping from mapFile (mremap, pages stay mapped; it may move): a new ArrayBuffer, the old one detached. */
  readonly remap: (mapping: ArrayBuffer, length: number) => ArrayBuffer;
  /** Unmaps a mapping from mapFile and detaches the ArrayBuffer (its views then read as empty). */
  readonly unmap: (mapping: ArrayBuffer) => void;
  /**
   * Allocates a file's pages in `[offset, offset + length)` by writing zeros, on a thread of its own (at the
   * lowest priority when `lowPriority`); it touches no mapping.
   */
  readonly allocate: (fd: number, offset: number, length: number, lowPriority: boolean) => Promise<void>;
  /** On the libuv pool: fills the page tables of `[offset, offset + length)` of a mapping from mapFile. */
  readonly populate: (mapping: ArrayBuffer, offset: number, length: number) => Promise<void>;
  /** On the libuv pool: out[i] = CRC32C of chunk i of src; with dst, src is copied into dst as well. */
  readonly crcChunks: (src: Uint8Array, chunkBytes: number, out: Uint32Array, dst?: Uint8Array) => Promise<void>;
  /**
   * On the libuv pool: reads dst.length bytes of a file from `position` chunk by chunk, checking each chunk
   * against `expected`; resolves with the first chunk (index within dst) that differs, or -1.
   */
  readonly readChunks: (fd: number, position: number, dst: Uint8Array, chunkBytes: number, expected: Uint32Array) => Promise<number>;
  /** Maps `[0, length)` of a file read-only; an opaque handle only {@link copyChunks} reads through. */
  readonly mapRead: (fd: number, length: number) => MappedFile;
  /** Unmaps a mapRead handle (at once, or when the copies under way are done). */
  readonly unmapRead: (handle: MappedFile) => void;
  /**
   * As readChunks, copying from a mapRead mapping: rejects TC_ERR_SHORT_READ when the file shrank under it
   * (the fault is caught, not fatal).
   */
  readonly copyChunks: (
    handle: MappedFile,
    position: number,
    dst: Uint8Array,
    chunkBytes: number,
    expected: Uint32Array,
  ) => Promise<number>;
}

/** An opaque mapping handle from the addon. */
export interface MappedFile {
  readonly __mappedFile: unique symbol;
}

function load(): NativeModule | undefined {
  if (process.env['TENSORCAST_NATIVE'] === '0') return undefined;
  // dist/src/bytes -> package root
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4 && !existsSync(join(dir, 'package.json')); i++) dir = dirname(dir);
  const path = join(dir, 'build', 'Release', 'tensorcast_native.node');
  if (!existsSync(path)) return undefined;
  try {
    const m = createRequire(import.meta.url)(path) as Partial<NativeModule>;
    // An addon built from an older checkout lacks the newer kernels: use the fallbacks rather than half of it.
    return typeof m.crc32c === 'function' && typeof m.gatherFile === 'function' && typeof m.copyChunks === 'function'
      ? (m as NativeModule)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The addon, when built and enabled. */
export const native: NativeModule | undefined = load();

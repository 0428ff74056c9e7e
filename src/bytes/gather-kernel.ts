// The strided-gather kernel: copies `rows` rows of `rowLength` bytes, `stride` apart, into a dense
// destination. The native kernel (native/gather.c, built by `npm install`) does one memcpy per row with no
// per-row JS overhead; the TypeScript kernel gives identical output where the native one is unavailable.

import { native } from './native.js';

/** Signature shared by both kernels. */
export type GatherFn = (
  dst: Uint8Array,
  dstOffset: number,
  src: Uint8Array,
  srcOffset: number,
  rowLength: number,
  stride: number,
  rows: number,
) => void;

/** Which kernel runs: 'native' (C, Node-API) or 'js'. */
export type KernelName = 'native' | 'js';

/**
 * The TypeScript kernel. Short rows are copied word by word (a subarray per row costs more than the copy);
 * long rows use `TypedArray.set`.
 */
export const gatherJs: GatherFn = (dst, dstOffset, src, srcOffset, rowLength, stride, rows) => {
  if (rows <= 0 || rowLength <= 0) return;
  if (
    srcOffset < 0 ||
    dstOffset < 0 ||
    srcOffset + (rows - 1) * stride + rowLength > src.length ||
    dstOffset + rows * rowLength > dst.length
  ) {
    throw new RangeError('gather: rows fall outside the source or destination');
  }
  if (rowLength >= 256) {
    for (let r = 0, s = srcOffset, d = dstOffset; r < rows; r++, s += stride, d += rowLength) dst.set(src.subarray(s, s + rowLength), d);
    return;
  }
  const aligned =
    (src.byteOffset + srcOffset) % 4 === 0 && (dst.byteOffset + dstOffset) % 4 === 0 && rowLength % 4 === 0 && stride % 4 === 0;
  if (aligned && src.byteOffset % 4 === 0 && dst.byteOffset % 4 === 0) {
    const s32 = new Int32Array(src.buffer, src.byteOffset, src.length >>> 2);
    const d32 = new Int32Array(dst.buffer, dst.byteOffset, dst.length >>> 2);
    const w = rowLength >>> 2;
    const st = stride >>> 2;
    let s = srcOffset >>> 2;
    let d = dstOffset >>> 2;
    for (let r = 0; r < rows; r++, s += st) for (let i = 0; i < w; i++) d32[d++] = s32[s + i]!;
    return;
  }
  let d = dstOffset;
  for (let r = 0, s = srcOffset; r < rows; r++, s += stride) for (let i = 0; i < rowLength; i++) dst[d++] = src[s + i]!;
};

/** Gathers rows straight from a file's pages on the libuv pool (native only). */
export type GatherFileFn = (
  fd: number,
  position: number,
  rowLength: number,
  stride: number,
  rows: number,
  dst: Uint8Array,
  dstOffset: number,
) => Promise<void>;

/** The native kernel, when it was built and `TENSORCAST_NATIVE` is not `0`. */
export const gatherNative: GatherFn | undefined = native?.gather;

/** The native file-page gather, when built. */
export const gatherFileNative: GatherFileFn | undefined = native?.gatherFile;

/** The kernel in use: native when available, else TypeScript. */
export const gather: GatherFn = native?.gather ?? gatherJs;

/** Name of the kernel {@link gather} runs. */
export const activeKernel: KernelName = native !== undefined ? 'native' : 'js';

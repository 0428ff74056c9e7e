// Compiles a normalized view into a byte-range program: an ordered list of runs that fill a dense,
// row-major output. `pad` writes zeros, `contiguous` copies one source range, `strided` copies `rows`
// rows of `rowLength` bytes that lie `stride` bytes apart in the source. Offsets are in the canonical
// byte space (source) and the view's byte space (destination).

import { dtypeBits, type Dtype } from '../core/dtypes.js';
import { tcError } from '../core/errors.js';
import type { Box, NormalizedSelection, NormalizedView } from './view.js';

/** Zero-fill `length` bytes at `dst`. */
export interface PadRun {
  readonly kind: 'pad';
  readonly dst: number;
  readonly length: number;
}

/** Copy `length` source bytes at `src` to `dst`. */
export interface ContiguousRun {
  readonly kind: 'contiguous';
  readonly dst: number;
  readonly src: number;
  readonly length: number;
}

/** Copy `rows` rows of `rowLength` bytes; row r starts at `src + r * stride`, lands at `dst + r * rowLength`. */
export interface StridedRun {
  readonly kind: 'strided';
  readonly dst: number;
  readonly src: number;
  readonly rowLength: number;
  readonly stride: number;
  readonly rows: number;
}

/** One step of a program. */
export type Run = PadRun | ContiguousRun | StridedRun;

/** A tensor of the program's output. */
export interface ProgramTensor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Offset in the output. */
  readonly offset: number;
  readonly byteLength: number;
}

/** A compiled view. */
export interface ByteRangeProgram {
  readonly indexHash: string;
  readonly viewId: string | undefined;
  readonly runs: readonly Run[];
  readonly tensors: readonly ProgramTensor[];
  /** Bytes of output. */
  readonly totalBytes: number;
  /** Source bytes the runs need (excluding padding). */
  readonly sourceBytes: number;
}

/** Byte length a run writes. */
export function runLength(run: Run): number {
  return run.kind === 'strided' ? run.rows * run.rowLength : run.length;
}

/**
 * Compiles `view` into a program.
 *
 * @throws TC_ERR_VIEW_MISALIGNED when a sub-byte dtype's selection does not start and end on byte boundaries.
 * @example const program = compileProgram(normalizeView(index, spec));
 */
export function compileProgram(view: NormalizedView): ByteRangeProgram {
  const runs: Run[] = [];
  const tensors: ProgramTensor[] = [];
  let dst = 0;
  for (const sel of view.selections) {
    const start = dst;
    dst = compileSelection(sel, dst, runs);
    tensors.push({ name: sel.tensor.name, dtype: sel.tensor.dtype, shape: sel.shape, offset: start, byteLength: dst - start });
  }
  const merged = mergeRuns(runs);
  const sourceBytes = merged.reduce((n, r) => (r.kind === 'pad' ? n : n + runLength(r)), 0);
  return { indexHash: view.indexHash, viewId: view.viewId, runs: merged, tensors, totalBytes: dst, sourceBytes };
}

function compileSelection(sel: NormalizedSelection, dst: number, out: Run[]): number {
  const t = sel.tensor;
  const bits = dtypeBits(t.dtype);
  if (sel.whole) {
    if (t.byteLength > 0) out.push({ kind: 'contiguous', dst, src: t.offset, length: t.byteLength });
    return dst + t.byteLength;
  }
  let at = dst;
  for (const box of sel.pieces) at = compileBox(t.name, t.shape, bits, t.offset, box, at, out);
  if (sel.padDim0 > 0) {
    const rowBits = t.shape.slice(1).reduce((n, d) => n * d, 1) * bits * sel.padDim0;
    const length = toBytes(rowBits, t.name, 'padding');
    if (length > 0) out.push({ kind: 'pad', dst: at, length });
    at += length;
  }
  return at;
}

function toBytes(bitCount: number, tensor: string, what: string): number {
  if (bitCount % 8 !== 0) {
    throw tcError('TC_ERR_VIEW_MISALIGNED', `tensor '${tensor}': ${what} does not fall on a byte boundary (${bitCount} bits)`, {
      details: { tensor },
    });
  }
  return bitCount / 8;
}

/** Emits the runs of one box of a row-major tensor; returns the destination offset after it. */
function compileBox(name: string, shape: readonly number[], bits: number, base: number, box: Box, dst: number, out: Run[]): number {
  const n = shape.length;
  if (box.some(([, len]) => len === 0)) return dst;
  const elemStride: number[] = new Array<number>(n);
  let acc = 1;
  for (let i = n - 1; i >= 0; i--) {
    elemStride[i] = acc;
    acc *= shape[i]!;
  }
  // k: the innermost dimension that is narrowed; dimensions after it are whole and join the row.
  let k = n - 1;
  while (k >= 0 && box[k]![0] === 0 && box[k]![1] === shape[k]) k--;
  if (k < 0) {
    const length = toBytes(acc * bits, name, 'tensor');
    if (length > 0) out.push({ kind: 'contiguous', dst, src: base, length });
    return dst + length;
  }
  const rowElems = box[k]![1] * elemStride[k]!;
  const rowLength = toBytes(rowElems * bits, name, `a row of ${rowElems} elements`);
  if (k === 0) {
    const src = base + toBytes(box[0]![0] * elemStride[0]! * bits, name, 'the start of the selection');
    out.push({ kind: 'contiguous', dst, src, length: rowLength });
    return dst + rowLength;
  }
  // Rows run over dimensions m..k-1; whole dimensions among m+1..k-1 keep the row stride uniform.
  let m = k - 1;
  while (m > 0 && box[m]![0] === 0 && box[m]![1] === shape[m]) m--;
  let rows = box[m]![1];
  for (let i = m + 1; i < k; i++) rows *= shape[i]!;
  const strideElems = elemStride[k - 1]!;
  const stride = rows > 1 ? toBytes(strideElems * bits, name, 'the row stride') : 0;
  const innerStartElems = box[m]![0] * elemStride[m]! + box[k]![0] * elemStride[k]!;
  // Odometer over the outer dimensions 0..m-1.
  const idx = new Array<number>(m).fill(0);
  for (;;) {
    let startElems = innerStartElems;
    for (let i = 0; i < m; i++) startElems += (box[i]![0] + idx[i]!) * elemStride[i]!;
    const src = base + toBytes(startElems * bits, name, 'the start of a row');
    out.push(rows === 1 ? { kind: 'contiguous', dst, src, length: rowLength } : { kind: 'strided', dst, src, rowLength, stride, rows });
    dst += rows * rowLength;
    let i = m - 1;
    while (i >= 0 && ++idx[i]! === box[i]![1]) idx[i--] = 0;
    if (i < 0) break;
  }
  return dst;
}

/** Merges runs that continue each other in both source and destination. */
function mergeRuns(runs: readonly Run[]): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    const prev = out[out.length - 1];
    if (
      prev !== undefined &&
      prev.kind === 'contiguous' &&
      r.kind === 'contiguous' &&
      prev.src + prev.length === r.src &&
      prev.dst + prev.length === r.dst
    ) {
      out[out.length - 1] = { kind: 'contiguous', dst: prev.dst, src: prev.src, length: prev.length + r.length };
    } else if (prev !== undefined && prev.kind === 'pad' && r.kind === 'pad' && prev.dst + prev.length === r.dst) {
      out[out.length - 1] = { kind: 'pad', dst: prev.dst, length: prev.length + r.length };
    } else {
      out.push(r);
    }
  }
  return out;
}

/**
 * The part of `program` that writes `[start, end)` of its output, as a run list for a buffer of
 * `end - start` bytes: lets a caller materialize a large output through a smaller buffer.
 */
export function programWindow(program: { readonly runs: readonly Run[] }, start: number, end: number): { runs: Run[]; totalBytes: number } {
  return { runs: clipRuns(program.runs, start, end), totalBytes: end - start };
}

/**
 * The runs that write into `[start, end)` of the output, cut to that window and shifted so the window
 * starts at 0. Lets a caller materialize a large output through a smaller buffer.
 */
export function clipRuns(runs: readonly Run[], start: number, end: number): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    const rEnd = r.dst + runLength(r);
    if (rEnd <= start || r.dst >= end) continue;
    if (r.dst >= start && rEnd <= end) {
      out.push({ ...r, dst: r.dst - start });
      continue;
    }
    const lo = Math.max(start, r.dst);
    const hi = Math.min(end, rEnd);
    if (r.kind === 'pad') {
      out.push({ kind: 'pad', dst: lo - start, length: hi - lo });
    } else if (r.kind === 'contiguous') {
      out.push({ kind: 'contiguous', dst: lo - start, src: r.src + (lo - r.dst), length: hi - lo });
    } else {
      clipStrided(r, lo, hi, start, out);
    }
  }
  return out;
}

function clipStrided(r: StridedRun, lo: number, hi: number, start: number, out: Run[]): void {
  const srcOf = (pos: number): number => r.src + Math.floor((pos - r.dst) / r.rowLength) * r.stride + ((pos - r.dst) % r.rowLength);
  let pos = lo;
  const headRow = Math.floor((pos - r.dst) / r.rowLength);
  const headEnd = Math.min(hi, r.dst + (headRow + 1) * r.rowLength);
  if ((pos - r.dst) % r.rowLength !== 0 || headEnd - pos < r.rowLength) {
    out.push({ kind: 'contiguous', dst: pos - start, src: srcOf(pos), length: headEnd - pos });
    pos = headEnd;
  }
  const fullRows = Math.floor((hi - pos) / r.rowLength);
  if (fullRows > 0) {
    out.push(
      fullRows === 1
        ? { kind: 'contiguous', dst: pos - start, src: srcOf(pos), length: r.rowLength }
        : { kind: 'strided', dst: pos - start, src: srcOf(pos), rowLength: r.rowLength, stride: r.stride, rows: fullRows },
    );
    pos += fullRows * r.rowLength;
  }
  if (pos < hi) out.push({ kind: 'contiguous', dst: pos - start, src: srcOf(pos), length: hi - pos });
}

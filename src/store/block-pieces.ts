// One block of a view on its way out, as pieces: a long contiguous run comes as the source's own memory
// where the source lends it (a file's mapped pages, so the only copy is the one into the socket), the rest
// (strided slices, short runs, padding) is materialized into a scratch buffer at its place in the block.

import type { ByteSource } from '../bytes/byte-source.js';
import type { RunList } from '../bytes/materialize.js';
import { allSettledOrThrow } from '../core/async.js';
import { tcError } from '../core/errors.js';
import type { Run } from '../layout/program.js';

/** Contiguous runs shorter than this are copied with their neighbours (a piece of its own costs a frame). */
export const MIN_LENT_BYTES = 256 << 10;

/** What {@link blockPieces} produced. */
export interface BlockPieces {
  /** The block's bytes in output order: lent memory and parts of the scratch buffer. */
  readonly pieces: Uint8Array[];
  /** Bytes lent by the source (not copied). */
  readonly lentBytes: number;
}

/**
 * Produces a block whose runs are `runs` (offsets relative to the block, covering `[0, scratch.length)` in
 * order): lends what the source lends, materializes the rest into `scratch` through `materialize` (spans
 * run at once). When it rejects, no materialization is still writing into `scratch`.
 *
 * @throws the source's or materialization's errors (TC_ERR_IO, TC_ERR_SHORT_READ, ...)
 */
export async function blockPieces(
  runs: readonly Run[],
  source: ByteSource,
  scratch: Uint8Array,
  materialize: (list: RunList, dest: Uint8Array) => Promise<void>,
): Promise<BlockPieces> {
  const pieces: Uint8Array[] = [];
  const copies: Promise<void>[] = [];
  let lentBytes = 0;
  let span: Run[] = [];
  let spanStart = 0;
  const copyUpTo = (end: number): void => {
    if (end > spanStart) {
      const dest = scratch.subarray(spanStart, end);
      const shift = spanStart;
      copies.push(materialize({ runs: span.map((r) => ({ ...r, dst: r.dst - shift })), totalBytes: end - spanStart }, dest));
      pieces.push(dest);
    }
    span = [];
    spanStart = end;
  };
  try {
    for (const r of runs) {
      const lent = r.kind === 'contiguous' && r.length >= MIN_LENT_BYTES ? await lend(source, r.src, r.length) : undefined;
      if (lent === undefined || r.kind !== 'contiguous') {
        span.push(r);
        continue;
      }
      copyUpTo(r.dst);
      pieces.push(...lent);
      lentBytes += r.length;
      spanStart = r.dst + r.length;
    }
    copyUpTo(scratch.length);
  } finally {
    // Even when lending failed half-way: copies already started finish before the caller reuses scratch.
    await allSettledOrThrow(copies);
  }
  return { pieces, lentBytes };
}

/** `[src, src + length)` as lent pieces, or undefined when the source does not lend. */
async function lend(source: ByteSource, src: number, length: number): Promise<Uint8Array[] | undefined> {
  if (source.map === undefined) return undefined;
  const out: Uint8Array[] = [];
  for (let at = 0; at < length; ) {
    const piece = await source.map(src + at, length - at);
    if (piece === undefined) {
      if (at === 0) return undefined;
      throw tcError('TC_ERR_INTERNAL', `the source lent bytes at ${src}, then refused those at ${src + at}`);
    }
    out.push(piece);
    at += piece.length;
  }
  return out;
}

// A ByteSource over bytes in memory: one buffer, or several back to back (a byte space above 4 GiB
// cannot be one Buffer on Node 20). Exposes its bytes directly, so the executor can gather straight from it.

import { tcError } from '../core/errors.js';
import type { ByteSource } from './byte-source.js';

/**
 * Canonical bytes held in memory as consecutive segments.
 *
 * @example const source = new MemorySource([bytes]); await materialize(program, source, out);
 */
export class MemorySource implements ByteSource {
  readonly byteLength: number;
  private readonly segments: readonly Uint8Array[];
  private readonly starts: number[];

  constructor(segments: readonly Uint8Array[]) {
    this.segments = segments;
    this.starts = [];
    let at = 0;
    for (const s of segments) {
      this.starts.push(at);
      at += s.length;
    }
    this.byteLength = at;
  }

  private segmentIndex(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  read(offset: number, dest: Uint8Array): Promise<number> {
    return Promise.resolve(this.readSync(offset, dest));
  }

  /** Synchronous form of {@link read}. */
  readSync(offset: number, dest: Uint8Array): number {
    if (offset < 0 || offset > this.byteLength) {
      throw tcError('TC_ERR_SOURCE_RANGE', `offset ${offset} is outside the source of ${this.byteLength} bytes`);
    }
    let done = 0;
    let i = this.segmentIndex(offset);
    while (done < dest.length && i < this.segments.length) {
      const seg = this.segments[i]!;
      const from = offset + done - this.starts[i]!;
      const n = Math.min(seg.length - from, dest.length - done);
      if (n > 0) dest.set(seg.subarray(from, from + n), done);
      done += Math.max(n, 0);
      i++;
    }
    return done;
  }

  direct(offset: number, length: number): Uint8Array | undefined {
    if (offset < 0 || offset + length > this.byteLength || this.segments.length === 0) return undefined;
    const i = this.segmentIndex(offset);
    const seg = this.segments[i]!;
    const from = offset - this.starts[i]!;
    return from + length <= seg.length ? seg.subarray(from, from + length) : undefined;
  }
}

// What a client knows of a shm lease's chunks: all of them with their CRC32C (a lease on a finished
// replica), or, for a progressive lease, those the daemon announced as written so far, the rest arriving
// on the answer's stream while the client already reads the first ones.

import { checkSums, type ChunkChecksums } from '../bytes/chunk-checksums.js';
import { tcError } from '../core/errors.js';
import type { ShmLeaseLine, ShmLeaseOpening, ShmLeaseResponse } from '../protocol/http/loads.js';

interface Waiter {
  readonly chunks: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * The chunks of one lease.
 *
 * @example const lease = await LeaseChunks.open(answer, plan.totalBytes); await lease.until(4); // chunks 0-3 readable
 */
export class LeaseChunks {
  /** CRC32C per chunk, as announced (0 for chunks not announced yet). */
  readonly crcs: Uint32Array;
  /** The same as {@link ChunkChecksums}, for the checks of the TypeScript path. */
  readonly sums: ChunkChecksums & { readonly crcs: number[] };
  private readyChunks = 0;
  private failure: Error | undefined;
  private final: ShmLeaseResponse | undefined;
  private waiters: Waiter[] = [];
  /** Settles when the daemon's answer ended (never rejects). */
  readonly ended: Promise<void>;

  private constructor(
    readonly opening: ShmLeaseOpening,
    lines: AsyncGenerator<unknown, void, undefined> | undefined,
    final: ShmLeaseResponse | undefined,
  ) {
    const n = Math.ceil(opening.bytes / opening.chunkBytes);
    this.crcs = new Uint32Array(n);
    this.sums = { algorithm: 'crc32c', chunkBytes: opening.chunkBytes, crcs: new Array<number>(n).fill(0) };
    if (final !== undefined) this.finish(final);
    this.ended = lines === undefined ? Promise.resolve() : this.consume(lines);
  }

  /**
   * The lease of an answer to POST /v1/shm-leases: one JSON body, or a progressive stream whose first line
   * is read now (the rest is read in the background).
   *
   * @throws the daemon's error; TC_ERR_PROTOCOL for an answer that is neither; TC_ERR_INTERNAL when the
   *   lease does not hold `totalBytes`
   */
  static async open(
    answer: { readonly json: unknown } | { readonly lines: AsyncGenerator<unknown, void, undefined> },
    totalBytes: number,
  ): Promise<LeaseChunks> {
    let chunks: LeaseChunks;
    if ('json' in answer) chunks = LeaseChunks.whole(answer.json as ShmLeaseResponse);
    else {
      const first = await answer.lines.next();
      const line = first.value as ShmLeaseLine | undefined;
      if (first.done === true || line === undefined) throw tcError('TC_ERR_PROTOCOL', 'the shm lease answer was empty');
      if ('result' in line) {
        chunks = LeaseChunks.whole(line.result);
        await answer.lines.return();
      } else if ('opened' in line) {
        chunks = new LeaseChunks(line.opened, answer.lines, undefined);
      } else {
        throw tcError('TC_ERR_PROTOCOL', 'the shm lease answer began with neither a lease nor a result');
      }
    }
    if (chunks.opening.bytes !== totalBytes)
      throw tcError('TC_ERR_INTERNAL', `shm lease holds ${chunks.opening.bytes} bytes, expected ${totalBytes}`);
    return chunks;
  }

  private static whole(lease: ShmLeaseResponse): LeaseChunks {
    checkSums(lease.checksums, lease.bytes, `shm lease ${lease.path}`);
    const opening = {
      leaseId: lease.leaseId,
      path: lease.path,
      bytes: lease.bytes,
      expiresAt: lease.expiresAt,
      chunkBytes: lease.checksums.chunkBytes,
    };
    return new LeaseChunks(opening, undefined, lease);
  }

  /** The daemon's closing answer, once it came. */
  get result(): ShmLeaseResponse | undefined {
    return this.final;
  }

  /**
   * Resolves when chunks `[0, chunks)` are written and their CRCs known.
   *
   * @throws the daemon's error when its build failed; TC_ERR_UNAVAILABLE, TC_ERR_TIMEOUT when its answer broke
   */
  until(chunks: number): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (chunks <= this.readyChunks) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ chunks, resolve, reject }));
  }

  private async consume(lines: AsyncGenerator<unknown, void, undefined>): Promise<void> {
    try {
      for await (const value of lines) {
        const line = value as ShmLeaseLine;
        if ('ready' in line) this.announce(line.ready.firstChunk, line.ready.crcs);
        else if ('result' in line) {
          this.finish(line.result);
          return;
        } else throw tcError('TC_ERR_PROTOCOL', 'unexpected line in a shm lease answer');
      }
      throw tcError('TC_ERR_PROTOCOL', 'the shm lease answer ended without a result');
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private announce(firstChunk: number, crcs: readonly number[]): void {
    if (firstChunk !== this.readyChunks || firstChunk + crcs.length > this.crcs.length)
      throw tcError('TC_ERR_PROTOCOL', `shm lease: chunks announced out of order (${firstChunk} after ${this.readyChunks})`);
    crcs.forEach((crc, i) => {
      this.crcs[firstChunk + i] = crc;
      this.sums.crcs[firstChunk + i] = crc;
    });
    this.readyChunks = firstChunk + crcs.length;
    this.wake();
  }

  private finish(lease: ShmLeaseResponse): void {
    const sums = lease.checksums;
    if (lease.leaseId !== this.opening.leaseId || sums.chunkBytes !== this.opening.chunkBytes || sums.crcs.length !== this.crcs.length)
      throw tcError('TC_ERR_PROTOCOL', 'the shm lease result does not match its opening');
    // Chunks already announced (and maybe read) must keep their sums: the result may only add the rest.
    for (let i = 0; i < this.readyChunks; i++)
      if (sums.crcs[i] !== this.crcs[i]) throw tcError('TC_ERR_PROTOCOL', `shm lease: chunk ${i} was announced with another CRC32C`);
    this.announce(this.readyChunks, sums.crcs.slice(this.readyChunks));
    this.final = lease;
  }

  private fail(error: Error): void {
    this.failure = error;
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  private wake(): void {
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.chunks <= this.readyChunks) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }
}

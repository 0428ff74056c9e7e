// The materialize executor: runs a byte-range program against a ByteSource into the caller's buffer.
// Per strided run it picks direct gather (source bytes in memory), block read + pack (one read covers many
// rows, then the kernel packs them), or row copy (one read per row, straight into the destination).
// Reads run with bounded concurrency; on any failure no read is left writing into the caller's buffer.

import { performance } from 'node:perf_hooks';
import { tcError } from '../core/errors.js';
import type { Run, StridedRun } from '../layout/program.js';
import { BufferPool } from './buffer-pool.js';
import { checkRange, type ByteSource } from './byte-source.js';
import { activeKernel, gather, gatherJs, type GatherFn, type KernelName } from './gather-kernel.js';
import { emptyStats, materializeChannel, type MaterializeStats } from './materialize-stats.js';

/** When a strided run from in-memory bytes is gathered directly (else: block copy + pack). */
export interface DirectGatherThresholds {
  /** Smallest row, in bytes. */
  readonly minRowBytes: number;
  /** Smallest run (rows x row length), in bytes. */
  readonly minCopyBytes: number;
  /** Most rows in one run. */
  readonly maxRows: number;
}

/**
 * Defaults: always gather directly. The gather benchmark (`npm run bench -- gather`) measures direct
 * gather against block copy + pack from memory at 128 B to 32 KiB rows, and direct wins at every size.
 */
export const DEFAULT_DIRECT_THRESHOLDS: DirectGatherThresholds = { minRowBytes: 0, minCopyBytes: 0, maxRows: Number.POSITIVE_INFINITY };

/** The thresholds upstream tensorcast (PR #161) uses for in-memory sources, for comparison. */
export const SEED_DIRECT_THRESHOLDS: DirectGatherThresholds = { minRowBytes: 4096, minCopyBytes: 4 << 20, maxRows: 12288 };

/** Options of the executor. */
export interface MaterializeOptions {
  readonly direct?: Partial<DirectGatherThresholds>;
  /** Target size of one block read for file sources (default 8 MiB). */
  readonly blockTargetBytes?: number;
  /** Above this read amplification (stride / row length) a file run is read row by row (default 8). */
  readonly maxAmplification?: number;
  /** Rows at least this long are read one by one straight into the destination (default 256 KiB). */
  readonly rowReadMinBytes?: number;
  /** Largest single read of a contiguous run (default 8 MiB). */
  readonly readChunkBytes?: number;
  /** Let sources that can (files, through the native kernel) copy rows without reading the gaps (default true). */
  readonly sourceGather?: boolean;
  /** Reads in flight at once (default 4, the size of libuv's pool). */
  readonly concurrency?: number;
  /** Force the TypeScript kernel. */
  readonly kernel?: KernelName;
  readonly signal?: AbortSignal;
  /** Called as bytes land: delivered so far, total. */
  readonly onProgress?: (deliveredBytes: number, totalBytes: number) => void;
}

/** What the executor runs: a program, or a window of one (see {@link programWindow}). */
export interface RunList {
  readonly runs: readonly Run[];
  readonly totalBytes: number;
}

type Job =
  | { readonly kind: 'read'; readonly src: number; readonly dst: number; readonly length: number; readonly row: boolean }
  | { readonly kind: 'block'; readonly run: StridedRun; readonly firstRow: number; readonly rows: number }
  | { readonly kind: 'rows'; readonly run: StridedRun; readonly firstRow: number; readonly rows: number };

const now = (): number => performance.now();

/**
 * Runs byte-range programs. Holds a pool of block buffers that is reused across calls.
 *
 * @example
 * const m = new Materializer();
 * const out = Buffer.allocUnsafe(program.totalBytes);
 * const stats = await m.run(program, FileSource.fromIndex(dir, index), out);
 */
export class Materializer {
  private readonly pool = new BufferPool();
  private readonly direct: DirectGatherThresholds;
  private readonly blockTargetBytes: number;
  private readonly maxAmplification: number;
  private readonly rowReadMinBytes: number;
  private readonly readChunkBytes: number;
  private readonly concurrency: number;
  private readonly sourceGather: boolean;
  private readonly kernel: GatherFn;
  private readonly kernelName: KernelName;

  constructor(private readonly options: MaterializeOptions = {}) {
    this.direct = { ...DEFAULT_DIRECT_THRESHOLDS, ...options.direct };
    this.blockTargetBytes = options.blockTargetBytes ?? 8 << 20;
    this.maxAmplification = options.maxAmplification ?? 8;
    this.rowReadMinBytes = options.rowReadMinBytes ?? 256 << 10;
    this.readChunkBytes = options.readChunkBytes ?? 8 << 20;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.sourceGather = options.sourceGather ?? true;
    this.kernelName = options.kernel === 'js' ? 'js' : activeKernel;
    this.kernel = this.kernelName === 'js' ? gatherJs : gather;
  }

  /**
   * Fills `dest` (exactly `program.totalBytes` long) and returns exact stats.
   *
   * @throws TC_ERR_DESTINATION_SIZE, TC_ERR_SOURCE_RANGE, TC_ERR_SHORT_READ, TC_ERR_IO, TC_ERR_ABORTED
   */
  async run(program: RunList, source: ByteSource, dest: Uint8Array): Promise<MaterializeStats> {
    if (dest.length !== program.totalBytes) {
      throw tcError('TC_ERR_DESTINATION_SIZE', `destination holds ${dest.length} bytes but the output is ${program.totalBytes}`);
    }
    const stats = emptyStats(this.kernelName);
    const t0 = now();
    const jobs: Job[] = [];
    let delivered = 0;
    for (const run of program.runs) {
      this.checkAborted();
      delivered += this.planRun(run, source, dest, stats, jobs);
    }
    this.options.onProgress?.(delivered, program.totalBytes);
    await this.runJobs(jobs, source, dest, stats, delivered, program.totalBytes);
    stats.outputBytes = program.totalBytes;
    const moved = stats.baseReads.bytes + stats.directBytes;
    const useful = program.totalBytes - stats.padBytes;
    stats.amplification = useful > 0 ? moved / useful : 1;
    stats.timesMs.total = now() - t0;
    if (materializeChannel.hasSubscribers) materializeChannel.publish(stats);
    return stats;
  }

  private checkAborted(): void {
    if (this.options.signal?.aborted === true)
      throw tcError('TC_ERR_ABORTED', 'materialization aborted', { cause: this.options.signal.reason });
  }

  /** Executes what can run synchronously now; queues reads. Returns the bytes delivered synchronously. */
  private planRun(run: Run, source: ByteSource, dest: Uint8Array, stats: MaterializeStats, jobs: Job[]): number {
    const t = now();
    if (run.kind === 'pad') {
      dest.fill(0, run.dst, run.dst + run.length);
      stats.padBytes += run.length;
      stats.runs.pad++;
      stats.timesMs.pad += now() - t;
      return run.length;
    }
    if (run.kind === 'contiguous') {
      checkRange(source, run.src, run.length);
      stats.runs.contiguous++;
      const bytes = source.direct?.(run.src, run.length);
      if (bytes !== undefined) {
        dest.set(bytes, run.dst);
        stats.directBytes += run.length;
        stats.timesMs.contiguous += now() - t;
        return run.length;
      }
      for (let at = 0; at < run.length; at += this.readChunkBytes) {
        jobs.push({
          kind: 'read',
          src: run.src + at,
          dst: run.dst + at,
          length: Math.min(this.readChunkBytes, run.length - at),
          row: false,
        });
      }
      return 0;
    }
    const span = (run.rows - 1) * run.stride + run.rowLength;
    checkRange(source, run.src, span);
    const bytes = source.direct?.(run.src, span);
    if (bytes !== undefined) {
      const d = this.direct;
      if (run.rowLength >= d.minRowBytes && run.rows * run.rowLength >= d.minCopyBytes && run.rows <= d.maxRows) {
        this.kernel(dest, run.dst, bytes, 0, run.rowLength, run.stride, run.rows);
        stats.runs.directGather++;
        stats.directBytes += run.rows * run.rowLength;
        stats.timesMs.directGather += now() - t;
      } else {
        this.packFromMemory(run, bytes, dest, stats);
      }
      return run.rows * run.rowLength;
    }
    if (this.sourceGather && source.readRows !== undefined) {
      // Source-side gather in pieces of about one block of output, so the pool's threads share a run.
      stats.runs.sourceGather++;
      const pieceRows = Math.max(1, Math.floor(this.blockTargetBytes / run.rowLength));
      for (let first = 0; first < run.rows; first += pieceRows) {
        jobs.push({ kind: 'rows', run, firstRow: first, rows: Math.min(pieceRows, run.rows - first) });
      }
      return 0;
    }
    if (run.rowLength >= this.rowReadMinBytes || run.stride / run.rowLength > this.maxAmplification) {
      stats.runs.rowCopy++;
      for (let r = 0; r < run.rows; r++) {
        jobs.push({ kind: 'read', src: run.src + r * run.stride, dst: run.dst + r * run.rowLength, length: run.rowLength, row: true });
      }
      return 0;
    }
    stats.runs.blockGather++;
    const blockRows = this.blockRows(run);
    for (let first = 0; first < run.rows; first += blockRows) {
      jobs.push({ kind: 'block', run, firstRow: first, rows: Math.min(blockRows, run.rows - first) });
    }
    return 0;
  }

  /** Rows of `run` that one block of about blockTargetBytes covers (at least one). */
  private blockRows(run: StridedRun): number {
    return Math.max(1, Math.floor((this.blockTargetBytes - run.rowLength) / run.stride) + 1);
  }

  /** The block path for in-memory bytes that fail the direct thresholds: copy the span, then pack. */
  private packFromMemory(run: StridedRun, bytes: Uint8Array, dest: Uint8Array, stats: MaterializeStats): void {
    stats.runs.blockGather++;
    const blockRows = this.blockRows(run);
    for (let first = 0; first < run.rows; first += blockRows) {
      const rows = Math.min(blockRows, run.rows - first);
      const spanBytes = (rows - 1) * run.stride + run.rowLength;
      let t = now();
      const block = this.pool.acquire(spanBytes);
      stats.timesMs.blockPrepare += now() - t;
      t = now();
      const from = first * run.stride;
      block.set(bytes.subarray(from, from + spanBytes), 0);
      stats.directBytes += spanBytes;
      stats.timesMs.blockLoad += now() - t;
      t = now();
      this.kernel(dest, run.dst + first * run.rowLength, block, 0, run.rowLength, run.stride, rows);
      stats.timesMs.pack += now() - t;
      this.pool.release(block);
    }
  }

  private async runJobs(
    jobs: readonly Job[],
    source: ByteSource,
    dest: Uint8Array,
    stats: MaterializeStats,
    done: number,
    total: number,
  ): Promise<void> {
    let next = 0;
    let failure: unknown;
    let delivered = done;
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < jobs.length) {
        const job = jobs[next++]!;
        try {
          this.checkAborted();
          delivered +=
            job.kind === 'read'
              ? await this.readJob(job, source, dest, stats)
              : job.kind === 'rows'
                ? await this.rowsJob(job, source, dest, stats)
                : await this.blockJob(job, source, dest, stats);
          this.options.onProgress?.(delivered, total);
        } catch (error) {
          failure ??= error;
        }
      }
    };
    // Every worker finishes its current read before we return, so nothing writes into `dest` afterwards.
    await Promise.all(Array.from({ length: Math.min(this.concurrency, jobs.length) }, worker));
    if (failure !== undefined)
      throw failure instanceof Error ? failure : tcError('TC_ERR_INTERNAL', 'materialization failed', { cause: failure });
  }

  private async readJob(job: Job & { kind: 'read' }, source: ByteSource, dest: Uint8Array, stats: MaterializeStats): Promise<number> {
    const t = now();
    const n = await source.read(job.src, dest.subarray(job.dst, job.dst + job.length));
    stats.baseReads.calls++;
    stats.baseReads.bytes += n;
    if (job.row) stats.timesMs.rowCopy += now() - t;
    else stats.timesMs.contiguous += now() - t;
    if (n !== job.length) throw shortRead(job.src, job.length, n);
    return job.length;
  }

  private async rowsJob(job: Job & { kind: 'rows' }, source: ByteSource, dest: Uint8Array, stats: MaterializeStats): Promise<number> {
    const { run, firstRow, rows } = job;
    const t = now();
    const at = run.dst + firstRow * run.rowLength;
    const done = await source.readRows!(
      run.src + firstRow * run.stride,
      run.rowLength,
      run.stride,
      rows,
      dest.subarray(at, at + rows * run.rowLength),
    );
    if (!done) return this.blockJob({ ...job, kind: 'block' }, source, dest, stats);
    stats.baseReads.calls++;
    stats.baseReads.bytes += rows * run.rowLength;
    stats.timesMs.sourceGather += now() - t;
    return rows * run.rowLength;
  }

  private async blockJob(job: Job & { kind: 'block' }, source: ByteSource, dest: Uint8Array, stats: MaterializeStats): Promise<number> {
    const { run, firstRow } = job;
    let rows = job.rows;
    let t = now();
    const wanted = (rows - 1) * run.stride + run.rowLength;
    const block = this.pool.acquire(wanted, run.rowLength);
    stats.timesMs.blockPrepare += now() - t;
    try {
      let row = firstRow;
      const end = firstRow + rows;
      while (row < end) {
        // A block smaller than wanted (allocation fell back) covers fewer rows per read.
        rows = Math.min(end - row, Math.floor((block.length - run.rowLength) / run.stride) + 1);
        const spanBytes = (rows - 1) * run.stride + run.rowLength;
        const src = run.src + row * run.stride;
        t = now();
        const n = await source.read(src, block.subarray(0, spanBytes));
        stats.baseReads.calls++;
        stats.baseReads.bytes += n;
        stats.timesMs.blockLoad += now() - t;
        if (n !== spanBytes) throw shortRead(src, spanBytes, n);
        t = now();
        this.kernel(dest, run.dst + row * run.rowLength, block, 0, run.rowLength, run.stride, rows);
        stats.timesMs.pack += now() - t;
        row += rows;
      }
    } finally {
      this.pool.release(block);
    }
    return job.rows * run.rowLength;
  }
}

function shortRead(offset: number, expected: number, got: number): Error {
  return tcError('TC_ERR_SHORT_READ', `short read: ${got} of ${expected} bytes at offset ${offset}`, {
    details: { offset, expected, got },
  });
}

/**
 * Materializes `program` from `source` into `dest` once (a Materializer of its own, so no pool outlives the
 * call; keep a {@link Materializer} to reuse its buffers across runs).
 *
 * @example const stats = await materialize(program, new MemorySource([bytes]), out);
 */
export function materialize(
  program: RunList,
  source: ByteSource,
  dest: Uint8Array,
  options?: MaterializeOptions,
): Promise<MaterializeStats> {
  return new Materializer(options).run(program, source, dest);
}

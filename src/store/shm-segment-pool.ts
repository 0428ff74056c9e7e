// Idle shm segments whose pages are already allocated, kept for the next shm build: a segment freed by an
// evicted or dropped replica, and a reserve allocated ahead of need (at start, and again after builds drew on
// it) on a low-priority thread. Idle bytes count under the daemon's memory budget: the replica cache frees
// them before it evicts any replica, a fill never takes room a replica could use, and segments idle for
// long are freed so a quiet daemon gives the memory back.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../core/logger.js';
import type { SpareBytes } from './replica-cache.js';
import { ShmSegment } from './shm-segment.js';

/** Options of a {@link ShmSegmentPool}. */
export interface ShmSegmentPoolOptions {
  /** Folder of idle segments (on the same tmpfs as the replicas: segments move by rename). */
  readonly dir: string;
  /** Idle pre-allocated bytes to keep ready (0: only segments given back are kept). */
  readonly reserveBytes: number;
  /** An idle segment unused this long is freed (ms, default 10 minutes). */
  readonly idleMs?: number;
  /** The reserve is topped up once no segment was claimed for this long (ms, default 1000). */
  readonly quietMs?: number;
  /** Bytes the memory budget can still give now (fills never take more). */
  readonly room: () => number;
  readonly log: Logger;
}

/** What the pool holds (metrics, tests). */
export interface ShmSegmentPoolInfo {
  readonly idleBytes: number;
  readonly idleSegments: number;
  readonly reserveBytes: number;
}

/** Sizes remembered for the next top-up. */
const MAX_WANTED = 16;

interface Idle {
  readonly segment: ShmSegment;
  since: number;
  /** Settles when the segment can be handed out (a rename or prefault under way). */
  ready: boolean;
}

/**
 * A pool of idle segments, best fit first.
 *
 * @example
 * const seg = pool.claim(bytes);  // synchronously, or undefined: create one
 * ...build into it...; pool.give(seg) when its replica goes.
 */
export class ShmSegmentPool implements SpareBytes {
  private readonly idle: Idle[] = [];
  private readonly pending = new Set<Promise<void>>();
  private readonly idleMs: number;
  private names = 0;
  private closed = false;
  private filling = false;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly quietMs: number;
  private topUp: NodeJS.Timeout | undefined;
  /** Sizes of segments to allocate ahead, in order. */
  private readonly wanted: number[] = [];
  /** Bytes of segments being created (counted from the moment they are decided on). */
  private creating = 0;

  constructor(private readonly opts: ShmSegmentPoolOptions) {
    this.idleMs = opts.idleMs ?? 600_000;
    this.quietMs = opts.quietMs ?? 1000;
  }

  /**
   * Creates the pool's folder and allocates the reserve, before the daemon serves (so its first shm loads
   * find it ready), at normal priority, two segments at a time. No view size is known yet: the reserve is
   * split into sizes that halve (half of it, a quarter, ... down to 4 MiB), so most views find a segment at
   * most twice their size. A reserve that cannot be allocated (tmpfs full) is logged and skipped.
   */
  async init(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true });
    const sizes = reserveSizes(this.opts.reserveBytes);
    const worker = async (): Promise<void> => {
      for (let size = sizes.shift(); size !== undefined && !this.closed; size = sizes.shift()) {
        if (!(await this.allocate(size, false))) return;
      }
    };
    await Promise.all([worker(), worker()]);
  }

  /** Idle bytes (ready or being prepared). */
  get bytes(): number {
    let n = this.creating;
    for (const i of this.idle) n += i.segment.bytes;
    return n;
  }

  info(): ShmSegmentPoolInfo {
    return { idleBytes: this.bytes, idleSegments: this.idle.length, reserveBytes: this.opts.reserveBytes };
  }

  /** Bytes of the segment {@link claim} would hand out for a build of `bytes` (0: none). */
  covering(bytes: number): number {
    return this.pick(bytes)?.segment.bytes ?? 0;
  }

  /**
   * Takes the idle segment that best fits a build of `bytes`, or undefined: the smallest at least as large
   * and at most twice as large (its tail is freed), else the largest smaller one (it grows; its pages are
   * saved), never one more than twice as large (a small view would waste it; its own fresh pages cost
   * little). Synchronous, so the replica cache's accounting holds between making room and building. The
   * caller resizes and renames it. A segment found changed behind the pool's back is freed, not handed out.
   * A segment of this size is allocated again ahead (the next view is likely alike: the other TP ranks).
   */
  claim(bytes: number): ShmSegment | undefined {
    if (bytes <= this.opts.reserveBytes) {
      this.wanted.push(bytes);
      // Builds that never pause keep asking: only the latest few sizes matter.
      if (this.wanted.length > MAX_WANTED) this.wanted.shift();
    }
    for (;;) {
      const best = this.pick(bytes);
      if (best === undefined) return undefined;
      this.idle.splice(this.idle.indexOf(best), 1);
      if (best.segment.intact()) return best.segment;
      this.opts.log.warn({ path: best.segment.path }, 'idle shm segment changed on disk: freed');
      this.free(best.segment);
    }
  }

  /** Takes back the segment of a replica that went (its bytes are overwritten before any reuse). */
  give(segment: ShmSegment): void {
    if (this.closed) {
      this.free(segment);
      return;
    }
    // Ready at once: the next build may take it over while it still moves into the pool folder (the
    // segment runs its renames in order).
    const entry: Idle = { segment, since: Date.now(), ready: true };
    this.idle.push(entry);
    this.track(
      segment.moveTo(join(this.opts.dir, `idle-${this.names++}.bin`)).catch((error: unknown) => {
        if (!this.idle.includes(entry)) return;
        this.opts.log.warn({ err: error, path: segment.path }, 'cannot keep a shm segment: freed');
        this.drop(entry);
      }),
    );
    this.schedule();
  }

  /**
   * Frees idle segments until at least `bytes` are freed or none is left, keeping till last the one
   * {@link claim} would hand out for a build of `keepFor` bytes; returns the bytes freed.
   */
  shrink(bytes: number, keepFor?: number): number {
    const keep = keepFor === undefined ? undefined : this.pick(keepFor);
    // Largest first: fewest segments freed for the room asked.
    const order = [...this.idle].sort((a, b) => b.segment.bytes - a.segment.bytes).filter((i) => i !== keep);
    if (keep !== undefined) order.push(keep);
    let freed = 0;
    for (const entry of order) {
      if (freed >= bytes) break;
      freed += entry.segment.bytes;
      this.drop(entry);
    }
    return freed;
  }

  /**
   * Tops the reserve up in the background once builds pause (no claim for `quietMs`: allocating competes
   * for the cores with loads under way, and builds arriving together would not wait for it anyway): the
   * sizes asked for (one per build), allocated one at a time at the lowest CPU priority, each while it fits
   * both the reserve and the budget's room.
   */
  fill(): void {
    if (this.closed || this.opts.reserveBytes <= 0 || this.wanted.length === 0) return;
    if (this.topUp !== undefined) clearTimeout(this.topUp);
    this.topUp = setTimeout(() => {
      this.topUp = undefined;
      if (this.filling || this.closed) return;
      this.filling = true;
      this.track(
        this.fillLoop().finally(() => {
          this.filling = false;
        }),
      );
    }, this.quietMs);
    this.topUp.unref();
  }

  /** Frees every idle segment and waits for renames, prefaults and frees under way. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper !== undefined) clearTimeout(this.sweeper);
    if (this.topUp !== undefined) clearTimeout(this.topUp);
    this.sweeper = undefined;
    for (const entry of [...this.idle]) this.drop(entry);
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private async fillLoop(): Promise<void> {
    for (let size = this.wanted.shift(); size !== undefined && !this.closed; size = this.wanted.shift()) {
      if (!(await this.allocate(size, true))) return;
    }
  }

  /**
   * Allocates one idle segment of `size` bytes when it fits both the reserve and the budget's room; false
   * when allocating failed (the caller stops: tmpfs is likely full).
   */
  private async allocate(size: number, lowPriority: boolean): Promise<boolean> {
    if (this.bytes + size > this.opts.reserveBytes || this.opts.room() < size) return true;
    let entry: Idle | undefined;
    // Counted from now on (the budget sees it), handed out once its pages are there.
    this.creating += size;
    try {
      const segment = await ShmSegment.create(join(this.opts.dir, `idle-${this.names++}.bin`), size).finally(() => {
        this.creating -= size;
      });
      entry = { segment, since: Date.now(), ready: false };
      this.idle.push(entry);
      if (this.closed) throw new Error('closed');
      await segment.prefault(lowPriority);
    } catch (error) {
      if (!this.closed) this.opts.log.warn({ err: error, bytes: size }, 'cannot allocate the shm reserve');
      if (entry !== undefined) this.drop(entry);
      return false;
    }
    if (this.idle.includes(entry)) {
      entry.ready = true;
      entry.since = Date.now();
      this.schedule();
    }
    return true;
  }

  private pick(bytes: number): Idle | undefined {
    let fits: Idle | undefined;
    let smaller: Idle | undefined;
    for (const i of this.idle) {
      if (!i.ready) continue;
      const s = i.segment.bytes;
      if (s >= bytes && s <= 2 * bytes && (fits === undefined || s < fits.segment.bytes)) fits = i;
      if (s < bytes && (smaller === undefined || s > smaller.segment.bytes)) smaller = i;
    }
    return fits ?? smaller;
  }

  private drop(entry: Idle): void {
    const at = this.idle.indexOf(entry);
    if (at >= 0) this.idle.splice(at, 1);
    this.free(entry.segment);
  }

  private free(segment: ShmSegment): void {
    this.track(segment.close());
  }

  private track(p: Promise<unknown>): void {
    const done = p.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  /** Frees segments idle for idleMs or longer, checking again while any is left. */
  private schedule(): void {
    if (this.closed || this.sweeper !== undefined) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      const cutoff = Date.now() - this.idleMs;
      for (const entry of [...this.idle]) if (entry.ready && entry.since <= cutoff) this.drop(entry);
      if (this.idle.length > 0) this.schedule();
    }, this.idleMs);
    this.sweeper.unref();
  }
}

/** The start reserve's segment sizes: half of it, a quarter, ... down to 4 MiB (each a multiple of 4 MiB). */
export function reserveSizes(reserveBytes: number): number[] {
  const unit = 4 << 20;
  const out: number[] = [];
  for (let s = reserveBytes / 2; s >= unit; s /= 2) out.push(Math.floor(s / unit) * unit);
  // A reserve too small to split is one segment (whole pages).
  if (out.length === 0 && reserveBytes >= 1 << 16) out.push(Math.floor(reserveBytes / 4096) * 4096);
  return out;
}

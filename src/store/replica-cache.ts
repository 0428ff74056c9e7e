// Replicas of views held by the daemon under one byte budget: in memory (buffers the data plane sends
// from) or in shared memory (files on tmpfs handed to same-host clients). Idle replicas are evicted least
// recently used first; a replica being read (refs > 0) is never evicted. Concurrent requests for the same
// replica join one materialization.

import type { ChunkChecksums } from '../bytes/chunk-checksums.js';
import { tcError } from '../core/errors.js';
import { withDeadline } from './deadline.js';
import type { FillContext } from './remote-views.js';

/** Where a replica lives. */
export type ReplicaTier = 'memory' | 'shm';

/** One replica. `segments` for memory, `path` for shm. */
export interface Replica {
  readonly key: string;
  readonly artifactId: string;
  readonly viewId: string | undefined;
  readonly tier: ReplicaTier;
  readonly bytes: number;
  readonly segments: readonly Buffer[];
  readonly path: string | undefined;
  /**
   * Resolves when bytes `[start, end)` are filled (memory replicas fill on demand, window by window).
   * Rejects with TC_ERR_TIMEOUT when `deadline` (Unix ms) passes first.
   */
  readonly ready: (start: number, end: number, deadline?: number, ctx?: FillContext) => Promise<void>;
  /** True when bytes `[start, end)` are already filled (absent: the replica is filled whole when built). */
  readonly filled?: (start: number, end: number) => boolean;
  /** CRC32C of each `chunkBytes` chunk of the bytes (shm replicas: computed as the file was written). */
  readonly checksums?: ChunkChecksums;
  refs: number;
  lastUsed: number;
}

/** Called when a replica leaves the cache (free its file, update the catalog). */
export type EvictHook = (replica: Replica, reason: 'evicted' | 'closed') => void;

/**
 * Memory held outside replicas under the same budget that can be given back at once (idle shm segments
 * kept for reuse): counted as used, and freed before any replica is evicted.
 */
export interface SpareBytes {
  /** Bytes held now. */
  readonly bytes: number;
  /** Bytes a build of `bytes` would take over from the spare (0: none); the build then needs only the rest. */
  covering(bytes: number): number;
  /** Frees at least `bytes` (or everything), what a build of `keepFor` bytes would take over last; returns bytes freed. */
  shrink(bytes: number, keepFor?: number): number;
}

/** Counters the metrics module reads. */
export interface ReplicaCacheStats {
  hits: number;
  misses: number;
  evictions: number;
}

/**
 * A byte-budgeted LRU of replicas.
 *
 * @example
 * const r = await cache.acquire(key, bytes, () => build());  // joins a build in flight
 * try { ...read r... } finally { cache.release(r); }
 */
export class ReplicaCache {
  private readonly entries = new Map<string, Replica>();
  private readonly building = new Map<string, Promise<Replica>>();
  private reserved = 0;
  readonly stats: ReplicaCacheStats = { hits: 0, misses: 0, evictions: 0 };

  constructor(
    readonly budgetBytes: number,
    private readonly onEvict: EvictHook,
    private readonly spare?: SpareBytes,
  ) {}

  /** Bytes held by replicas, reserved for replicas being built, and spare. */
  get usedBytes(): number {
    let n = this.reserved + (this.spare?.bytes ?? 0);
    for (const r of this.entries.values()) n += r.bytes;
    return n;
  }

  /** Bytes per tier. */
  bytesByTier(): Record<ReplicaTier, number> {
    const out: Record<ReplicaTier, number> = { memory: 0, shm: 0 };
    for (const r of this.entries.values()) out[r.tier] += r.bytes;
    return out;
  }

  /** True when a replica is stored under `key` (no reference taken). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The replica under `key`, with a reference taken, or undefined. */
  get(key: string): Replica | undefined {
    const r = this.entries.get(key);
    if (r !== undefined) {
      r.refs++;
      r.lastUsed = Date.now();
      this.stats.hits++;
    }
    return r;
  }

  /**
   * The replica under `key` with a reference taken, building it with `build` when absent (one build per key
   * at a time; a caller that finds a build in flight joins it until `deadline`, Unix ms). Space for `bytes`
   * is made by freeing spare bytes, then evicting idle replicas. With `recycles`, the build takes over what
   * the spare {@link SpareBytes.covering covers} for it (synchronously, as `build` starts), so that part is
   * kept rather than freed.
   *
   * @throws TC_ERR_BUDGET when `bytes` cannot fit even after evicting every idle replica; TC_ERR_TIMEOUT
   */
  async acquire(
    key: string,
    bytes: number,
    build: () => Promise<Omit<Replica, 'refs' | 'lastUsed'>>,
    deadline = Number.POSITIVE_INFINITY,
    recycles = false,
  ): Promise<Replica> {
    const replica = await this.acquireIfFits(key, bytes, build, deadline, recycles);
    if (replica === undefined) throw this.budgetError(bytes);
    return replica;
  }

  /**
   * Like {@link acquire}, but resolves undefined instead of throwing when the replica is neither held nor
   * being built and `bytes` cannot fit now: the caller then does without a replica (streams).
   *
   * @throws TC_ERR_TIMEOUT when a build in flight does not finish before `deadline`; the build's own error.
   */
  async acquireIfFits(
    key: string,
    bytes: number,
    build: () => Promise<Omit<Replica, 'refs' | 'lastUsed'>>,
    deadline = Number.POSITIVE_INFINITY,
    recycles = false,
  ): Promise<Replica | undefined> {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    let pending = this.building.get(key);
    if (pending === undefined) {
      if (!this.canFit(bytes)) return undefined;
      this.stats.misses++;
      this.makeRoom(bytes, recycles);
      this.reserved += bytes;
      pending = build()
        .then((r) => {
          const replica: Replica = { ...r, refs: 0, lastUsed: Date.now() };
          this.entries.set(key, replica);
          return replica;
        })
        .finally(() => {
          this.reserved -= bytes;
          this.building.delete(key);
        });
      this.building.set(key, pending);
    }
    const replica = await withDeadline(pending, deadline, `waiting for replica ${key} being built`);
    replica.refs++;
    replica.lastUsed = Date.now();
    return replica;
  }

  /** True when `bytes` could be made to fit by freeing spare bytes and evicting idle replicas. */
  canFit(bytes: number): boolean {
    let idle = this.spare?.bytes ?? 0;
    for (const r of this.entries.values()) if (r.refs === 0) idle += r.bytes;
    return this.usedBytes - idle + bytes <= this.budgetBytes;
  }

  private budgetError(bytes: number): Error {
    return tcError(
      'TC_ERR_BUDGET',
      `a replica of ${bytes} bytes does not fit the memory budget (${this.budgetBytes} bytes, ${this.usedBytes} in use)`,
      { details: { bytes, budget: this.budgetBytes } },
    );
  }

  private makeRoom(bytes: number, recycles: boolean): void {
    const idle = [...this.entries.values()].filter((r) => r.refs === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    for (;;) {
      const over = this.usedBytes + bytes - (recycles ? (this.spare?.covering(bytes) ?? 0) : 0) - this.budgetBytes;
      if (over <= 0) return;
      // Spare first (an allocation saved), then the least recently used replica (data saved).
      if (this.spare !== undefined && this.spare.shrink(over, recycles ? bytes : undefined) > 0) continue;
      const r = idle.shift();
      if (r === undefined) return;
      this.entries.delete(r.key);
      this.stats.evictions++;
      this.onEvict(r, 'evicted');
    }
  }

  /** Drops a reference taken by {@link get} or {@link acquire}. */
  release(replica: Replica): void {
    if (replica.refs <= 0) throw tcError('TC_ERR_INTERNAL', `replica ${replica.key} released more often than acquired`);
    replica.refs--;
    replica.lastUsed = Date.now();
  }

  /** Every replica, for listing. */
  list(): Replica[] {
    return [...this.entries.values()];
  }

  /** Drops a replica that turned out broken (a fill failed); readers holding it see their own error. */
  discard(replica: Replica): void {
    if (this.entries.get(replica.key) === replica) {
      this.entries.delete(replica.key);
      this.onEvict(replica, 'evicted');
    }
  }

  /** Empties the cache (shutdown). */
  clear(): void {
    for (const r of this.entries.values()) this.onEvict(r, 'closed');
    this.entries.clear();
  }
}

// Freed memory-tier object buffers kept for reuse (docs/performance.md, "Object memory reuse"). On a VM,
// touching fresh memory costs page faults (2-5 ms per MiB measured); a re-put or a new put of a similar
// size takes a buffer whose pages are already resident instead. Buffers come in size classes (8 per
// doubling, so a buffer is at most 1/8 larger than its object); idle buffers are bounded by `maxIdleBytes`,
// the largest evicted first when a new one does not fit, and the object store evicts them whenever it
// needs their room: idle bytes count inside the object memory budget, never beside it.

/** Objects below this size get plain allocations (one or two pages: no fault cost worth keeping). */
export const POOL_MIN_BYTES = 64 << 10;

/**
 * The capacity a pooled buffer for `size` bytes has: `size` rounded up to 1/8 of its power of two (sizes
 * below {@link POOL_MIN_BYTES} are not pooled and keep their size).
 *
 * @example poolCapacity(1 << 20) === 1 << 20; poolCapacity((1 << 20) + 1) === (1 << 20) + (1 << 17)
 */
export function poolCapacity(size: number): number {
  if (size < POOL_MIN_BYTES) return size;
  const step = 2 ** (Math.floor(Math.log2(size)) - 3);
  return Math.ceil(size / step) * step;
}

/**
 * A bounded pool of idle buffers by capacity.
 *
 * @example
 * const pool = new BufferPool(256 << 20);
 * const buf = pool.take(1 << 20) ?? Buffer.allocUnsafeSlow(poolCapacity(1 << 20));
 * pool.give(buf); // later, when its object is freed
 */
export class BufferPool {
  private readonly idle = new Map<number, Buffer[]>();
  private idleTotal = 0;
  private hitCount = 0;
  private missCount = 0;

  constructor(readonly maxIdleBytes: number) {}

  /** Bytes held by idle buffers. */
  get idleBytes(): number {
    return this.idleTotal;
  }

  /** Takes and reuses counted since creation. */
  get stats(): { idleBytes: number; hits: number; misses: number } {
    return { idleBytes: this.idleTotal, hits: this.hitCount, misses: this.missCount };
  }

  /** An idle buffer of capacity {@link poolCapacity}(size), or undefined (the caller allocates one). */
  take(size: number): Buffer | undefined {
    const cap = poolCapacity(size);
    if (cap < POOL_MIN_BYTES) return undefined;
    const list = this.idle.get(cap);
    const buf = list?.pop();
    if (buf === undefined) {
      this.missCount++;
      return undefined;
    }
    if (list!.length === 0) this.idle.delete(cap);
    this.idleTotal -= cap;
    this.hitCount++;
    return buf;
  }

  /**
   * Keeps `buf` for reuse (its content is garbage from now on). Returns false (the buffer is dropped) when it
   * is no pool capacity or the pool cannot hold it even after evicting larger ones.
   */
  give(buf: Buffer): boolean {
    const cap = buf.length;
    if (cap < POOL_MIN_BYTES || poolCapacity(cap) !== cap || cap > this.maxIdleBytes) return false;
    // Room is made by dropping the largest idle buffers first (they are the costliest to keep).
    while (this.idleTotal + cap > this.maxIdleBytes) {
      const largest = Math.max(...this.idle.keys());
      if (!(largest > cap)) return false;
      this.drop(largest);
    }
    let list = this.idle.get(cap);
    if (list === undefined) this.idle.set(cap, (list = []));
    list.push(buf);
    this.idleTotal += cap;
    return true;
  }

  /** Drops idle buffers (largest first) until at least `bytes` were released or none is left; returns bytes released. */
  evict(bytes: number): number {
    let released = 0;
    while (released < bytes && this.idleTotal > 0) released += this.drop(Math.max(...this.idle.keys()));
    return released;
  }

  /** Drops every idle buffer. */
  clear(): void {
    this.idle.clear();
    this.idleTotal = 0;
  }

  private drop(cap: number): number {
    const list = this.idle.get(cap)!;
    list.pop();
    if (list.length === 0) this.idle.delete(cap);
    this.idleTotal -= cap;
    return cap;
  }
}

// Reusable scratch buffers for block reads: buffers only grow, are handed back after use, and an
// allocation that fails is retried at half the size (the caller then reads smaller blocks). Idle buffers
// are kept up to a byte cap; what is handed back beyond it is let go.

/** Default cap on the bytes a pool keeps idle. */
export const DEFAULT_MAX_IDLE_BYTES = 64 << 20;

/** A pool of scratch buffers. */
export class BufferPool {
  private readonly free: Buffer[] = [];

  /** @param maxIdleBytes most bytes kept idle for reuse (many concurrent users do not pin their peak). */
  constructor(private readonly maxIdleBytes = DEFAULT_MAX_IDLE_BYTES) {}

  /**
   * A buffer of at least `minimumBytes`, preferably `wantedBytes`: an idle buffer when one is large enough,
   * else a new one, halving `wantedBytes` down to `minimumBytes` when allocation fails.
   */
  acquire(wantedBytes: number, minimumBytes = wantedBytes): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      if (this.free[i]!.length >= minimumBytes && (best < 0 || this.free[i]!.length > this.free[best]!.length)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0]!;
    // Grow: drop the largest idle buffer that is too small and allocate a bigger one.
    if (this.free.length > 0) this.free.sort((a, b) => a.length - b.length).pop();
    let size = Math.max(wantedBytes, minimumBytes);
    for (;;) {
      try {
        return Buffer.allocUnsafeSlow(size);
      } catch (error) {
        if (size <= minimumBytes) throw error;
        size = Math.max(minimumBytes, Math.floor(size / 2));
      }
    }
  }

  /** Returns a buffer for reuse; dropped when the idle cap would be passed. */
  release(buffer: Buffer): void {
    if (this.idleBytes + buffer.length <= this.maxIdleBytes) this.free.push(buffer);
  }

  /** Bytes held by idle buffers. */
  get idleBytes(): number {
    return this.free.reduce((n, b) => n + b.length, 0);
  }
}

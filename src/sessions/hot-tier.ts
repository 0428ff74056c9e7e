// The hot tier's memory: every hot byte (copies of entries and room reserved for appends in flight) is
// reserved here first, so the tier never holds more than its budget (docs/sessions.md "Tiers and the LRU").
// Buffers of swapped-out copies are kept for reuse by size while they fit beside the reservations: a fresh
// buffer costs a page fault per page on first touch, which would make a swap-in several times slower than a
// plain read of the same bytes.

import { tcError } from '../core/errors.js';

/**
 * Accounting and buffers of one cache instance's hot memory. Reserved plus pooled bytes never exceed the
 * budget.
 *
 * @example
 * if (hot.tryReserve(n)) { const dest = hot.allocate(n); ...; hot.release(n, dest) when dropped }
 */
export class HotTier {
  private reservedBytes = 0;
  private pooledBytes = 0;
  /** Free buffers by length, each list oldest first. */
  private readonly pool = new Map<number, Buffer[]>();

  /** @throws TC_ERR_INVALID_ARGUMENT for a budget that is not a non-negative safe integer */
  constructor(readonly budgetBytes: number) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 0) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `hot.budgetBytes must be a non-negative integer (got ${String(budgetBytes)})`);
    }
  }

  /** Bytes reserved: hot copies plus room held for appends in flight. */
  get bytes(): number {
    return this.reservedBytes;
  }

  /** Reserves `bytes` when they fit under the budget; false (nothing reserved) otherwise. */
  tryReserve(bytes: number): boolean {
    if (this.reservedBytes + bytes > this.budgetBytes) return false;
    this.reservedBytes += bytes;
    return true;
  }

  /**
   * Gives back `bytes` reserved earlier. `reusable`, a buffer of exactly that length that nobody reads or
   * writes any more, is kept for a later `allocate` of the same length.
   */
  release(bytes: number, reusable?: Buffer): void {
    this.reservedBytes -= bytes;
    if (this.reservedBytes < 0) throw tcError('TC_ERR_INTERNAL', `hot tier: released more bytes than reserved (${this.reservedBytes})`);
    if (reusable !== undefined && reusable.length === bytes && bytes > 0) {
      const list = this.pool.get(bytes) ?? [];
      list.push(reusable);
      this.pool.set(bytes, list);
      this.pooledBytes += bytes;
    }
    this.trim(0);
  }

  /** A buffer of `bytes` for reserved room (not initialized: the caller fills it completely). */
  allocate(bytes: number): Buffer {
    const list = this.pool.get(bytes);
    const pooled = list?.pop();
    if (pooled !== undefined) {
      this.pooledBytes -= bytes;
      if (list!.length === 0) this.pool.delete(bytes);
      return pooled;
    }
    // The new buffer (already reserved) must fit beside the other reservations and the pool.
    this.trim(0);
    return Buffer.allocUnsafeSlow(bytes);
  }

  /** Drops pooled buffers (oldest lengths first) until `extra` more bytes fit beside reservations and pool. */
  private trim(extra: number): void {
    for (const [length, list] of this.pool) {
      while (list.length > 0 && this.reservedBytes + this.pooledBytes + extra > this.budgetBytes) {
        list.shift();
        this.pooledBytes -= length;
      }
      if (list.length === 0) this.pool.delete(length);
      if (this.reservedBytes + this.pooledBytes + extra <= this.budgetBytes) return;
    }
  }
}

// The hot tier's byte budget: every hot byte (copies of entries and room reserved for appends in flight) is
// reserved here first, so the tier never holds more than its budget (docs/sessions.md "Tiers and the LRU").

import { tcError } from '../core/errors.js';

/**
 * Accounting of one cache instance's hot memory. Buffers are allocated only after their bytes are reserved.
 *
 * @example
 * if (hot.tryReserve(n)) { const dest = hot.allocate(n); ... hot.release(n) when dropped }
 */
export class HotTier {
  private usedBytes = 0;

  /** @throws TC_ERR_INVALID_ARGUMENT for a budget that is not a non-negative safe integer */
  constructor(readonly budgetBytes: number) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 0) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `hot.budgetBytes must be a non-negative integer (got ${String(budgetBytes)})`);
    }
  }

  /** Bytes reserved: hot copies plus room held for appends in flight. */
  get bytes(): number {
    return this.usedBytes;
  }

  /** Reserves `bytes` when they fit under the budget; false (nothing reserved) otherwise. */
  tryReserve(bytes: number): boolean {
    if (this.usedBytes + bytes > this.budgetBytes) return false;
    this.usedBytes += bytes;
    return true;
  }

  /** Gives back `bytes` reserved earlier. */
  release(bytes: number): void {
    this.usedBytes -= bytes;
    if (this.usedBytes < 0) throw tcError('TC_ERR_INTERNAL', `hot tier: released more bytes than reserved (${this.usedBytes})`);
  }

  /** A buffer of `bytes` for reserved room (uninitialized: the caller fills it completely). */
  allocate(bytes: number): Buffer {
    return Buffer.allocUnsafeSlow(bytes);
  }
}

// A per-session lock inside one cache instance: operations that change a session here (append, truncate, swap,
// close) run one at a time, so two of them never race for the same owner's lease (a re-entrant acquire would
// fence the other out). Waits have a deadline.

import { tcError } from '../core/errors.js';

/**
 * An async mutex with a synchronous `tryLock` (the LRU takes idle sessions' locks without waiting).
 *
 * @example
 * await m.lock(5000, 'append to s1');
 * try { ... } finally { m.unlock(); }
 */
export class Mutex {
  private held = false;
  private readonly waiters: (() => void)[] = [];

  /** True while someone holds the lock or waits for it. */
  get busy(): boolean {
    return this.held || this.waiters.length > 0;
  }

  /** Takes the lock when it is free; false otherwise. */
  tryLock(): boolean {
    if (this.held) return false;
    this.held = true;
    return true;
  }

  /**
   * Takes the lock, waiting at most `timeoutMs`.
   *
   * @throws TC_ERR_TIMEOUT naming `what`
   */
  async lock(timeoutMs: number, what: string): Promise<void> {
    if (this.tryLock()) return;
    await new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(tcError('TC_ERR_TIMEOUT', `${what}: waited ${timeoutMs} ms for another operation on the session here`));
      }, timeoutMs);
      this.waiters.push(grant);
    });
  }

  /** Hands the lock to the next waiter, or frees it. */
  unlock(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next();
    else this.held = false;
  }
}

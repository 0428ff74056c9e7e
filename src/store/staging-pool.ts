// Staging buffers for bytes on their way out (a streamed view's windows, a shm replica being written):
// fixed-size stages under one byte bound, handed out in arrival order, waited for up to a deadline, and
// freed when they have sat idle for a while so a quiet daemon gives the memory back.

import { tcError } from '../core/errors.js';

/** Options of a {@link StagingPool}. */
export interface StagingPoolOptions {
  /** Most bytes the pool holds at once, stages in use and idle together. */
  readonly boundBytes: number;
  /** Bytes of one stage (default 16 MiB; never more than `boundBytes`). */
  readonly stageBytes?: number;
  /** An idle stage is freed after this many ms (default 2000). */
  readonly idleMs?: number;
}

/** What the pool holds now (metrics, tests). */
export interface StagingPoolInfo {
  readonly boundBytes: number;
  readonly stageBytes: number;
  readonly inUseBytes: number;
  readonly idleBytes: number;
  readonly waiting: number;
}

interface Waiter {
  readonly resolve: (stage: Buffer) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** Default stage size: the data plane's streaming window. */
export const DEFAULT_STAGE_BYTES = 16 << 20;

/**
 * A bounded pool of equal-sized staging buffers.
 *
 * @example
 * const stage = await pool.acquire(deadline, 'streaming a view');
 * try { ...fill and send stage... } finally { pool.release(stage); }
 */
export class StagingPool {
  readonly boundBytes: number;
  readonly stageBytes: number;
  private readonly idleMs: number;
  /** Idle stages with the time they were given back, oldest first. */
  private readonly idle: { stage: Buffer; since: number }[] = [];
  private readonly waiters: Waiter[] = [];
  private inUse = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: StagingPoolOptions) {
    this.boundBytes = options.boundBytes;
    this.stageBytes = Math.max(1, Math.min(options.stageBytes ?? DEFAULT_STAGE_BYTES, options.boundBytes));
    this.idleMs = options.idleMs ?? 2000;
  }

  /** Stages that fit the bound. */
  private get capacity(): number {
    return Math.max(1, Math.floor(this.boundBytes / this.stageBytes));
  }

  /** A stage now, or undefined when the bound is reached (no waiting). */
  tryAcquire(): Buffer | undefined {
    if (this.closed || this.waiters.length > 0) return undefined;
    return this.take();
  }

  /**
   * A stage, waiting in arrival order while the bound is reached.
   *
   * @throws TC_ERR_TIMEOUT when no stage came free before `deadline` (Unix ms); TC_ERR_SHUTTING_DOWN after close.
   */
  acquire(deadline: number, what = 'waiting for a staging buffer'): Promise<Buffer> {
    if (this.closed) return Promise.reject(tcError('TC_ERR_SHUTTING_DOWN', 'the staging pool is closed'));
    const now = this.tryAcquire();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<Buffer>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(
          () => {
            const i = this.waiters.indexOf(waiter);
            if (i >= 0) this.waiters.splice(i, 1);
            reject(
              tcError(
                'TC_ERR_TIMEOUT',
                `${what}: no staging buffer came free before the deadline (all ${this.capacity} stages of ${this.stageBytes} bytes in use)`,
                { details: { boundBytes: this.boundBytes } },
              ),
            );
          },
          Math.min(0x7fffffff, Math.max(0, deadline - Date.now())),
        ),
      };
      this.waiters.push(waiter);
    });
  }

  /** Gives a stage back: to the first waiter, else to the idle list (freed after `idleMs`). */
  release(stage: Buffer): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      waiter.resolve(stage);
      return;
    }
    this.inUse--;
    if (this.closed) return;
    this.idle.push({ stage, since: Date.now() });
    this.sweeper ??= setTimeout(() => this.sweep(), this.idleMs).unref();
  }

  /** Current use. */
  info(): StagingPoolInfo {
    return {
      boundBytes: this.boundBytes,
      stageBytes: this.stageBytes,
      inUseBytes: this.inUse * this.stageBytes,
      idleBytes: this.idle.length * this.stageBytes,
      waiting: this.waiters.length,
    };
  }

  /** Frees idle stages and fails every waiter with TC_ERR_SHUTTING_DOWN. */
  close(): void {
    this.closed = true;
    this.idle.length = 0;
    if (this.sweeper !== undefined) clearTimeout(this.sweeper);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(tcError('TC_ERR_SHUTTING_DOWN', 'the staging pool is closed'));
    }
  }

  private take(): Buffer | undefined {
    const reused = this.idle.pop();
    if (reused !== undefined) {
      this.inUse++;
      return reused.stage;
    }
    if (this.inUse + this.idle.length >= this.capacity) return undefined;
    this.inUse++;
    return Buffer.allocUnsafeSlow(this.stageBytes);
  }

  /** Drops stages idle for `idleMs` or longer (their memory goes back once collected). */
  private sweep(): void {
    this.sweeper = undefined;
    const cutoff = Date.now() - this.idleMs;
    let drop = 0;
    while (drop < this.idle.length && this.idle[drop]!.since <= cutoff) drop++;
    this.idle.splice(0, drop);
    if (this.idle.length > 0) this.sweeper = setTimeout(() => this.sweep(), this.idleMs).unref();
  }
}

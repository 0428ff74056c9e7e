// Puts waiting for room (namespace maxBytes or the object memory budget), served first in, first out per
// resource: a waiter is never overtaken by a later one that needs the same resource, and each wait ends at
// its deadline.

import type { TensorcastError } from '../../core/errors.js';

/** One waiting put. */
export interface RoomWaiter {
  /** Resources it needs (e.g. `ns:<name>`, `memory`): later waiters needing one of them queue behind it. */
  readonly resources: readonly string[];
  /** True when it fits now; then {@link grant} runs at once (it must take the room synchronously). */
  fits(): boolean;
  grant(): void;
  /** The deadline passed or the store closed. */
  fail(error: TensorcastError | undefined): void;
}

interface Entry {
  readonly waiter: RoomWaiter;
  timer: NodeJS.Timeout | undefined;
}

/**
 * FIFO queue of room waiters.
 *
 * @example if (waiters.busy(resources) === undefined && fits()) take(); else waiters.add(waiter, deadline);
 */
export class RoomWaiters {
  private readonly queue: Entry[] = [];

  constructor(private readonly now: () => number) {}

  /** Waiters queued. */
  get size(): number {
    return this.queue.length;
  }

  /** The first of `resources` a queued waiter needs (a new put must queue behind it), or undefined. */
  busy(resources: readonly string[]): string | undefined {
    return resources.find((r) => this.queue.some((e) => e.waiter.resources.includes(r)));
  }

  /** Queues a waiter until it fits (then granted by {@link pump}) or `deadline` (Unix ms) passes. */
  add(waiter: RoomWaiter, deadline: number): void {
    const entry: Entry = { waiter, timer: undefined };
    this.queue.push(entry);
    entry.timer = setTimeout(
      () => {
        const at = this.queue.indexOf(entry);
        if (at < 0) return;
        this.queue.splice(at, 1);
        waiter.fail(undefined);
        // It may have held back later waiters that fit.
        this.pump();
      },
      Math.max(0, deadline - this.now()),
    );
  }

  /** Grants, in order, every waiter that fits and is not behind an unfitting one on a shared resource. */
  pump(): void {
    const blocked = new Set<string>();
    for (let i = 0; i < this.queue.length;) {
      const entry = this.queue[i]!;
      const { waiter } = entry;
      if (!waiter.resources.some((r) => blocked.has(r)) && waiter.fits()) {
        this.queue.splice(i, 1);
        clearTimeout(entry.timer);
        waiter.grant();
        continue;
      }
      for (const r of waiter.resources) blocked.add(r);
      i++;
    }
  }

  /** Fails every waiter with `error` (the store closes). */
  failAll(error: TensorcastError): void {
    for (const entry of this.queue.splice(0)) {
      clearTimeout(entry.timer);
      entry.waiter.fail(error);
    }
  }
}

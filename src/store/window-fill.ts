// Filling a replica's bytes on demand, window by window, for several concurrent readers.

import { withDeadline } from './deadline.js';
import type { FillContext } from './remote-views.js';

/** Bytes per fill window of a memory replica (divides SEGMENT_BYTES, so a window never spans segments). */
export const WINDOW_BYTES = 16 << 20;

/**
 * On-demand filling of a byte range in fixed windows: each window is filled once, by whichever reader
 * needs it first; others wait for it. A failed window fails its waiters and is retried by the next reader.
 */
export class WindowFill {
  private readonly state: (Promise<void> | true | undefined)[];

  constructor(
    private readonly bytes: number,
    private readonly fillWindow: (start: number, end: number, deadline: number, ctx: FillContext | undefined) => Promise<void>,
  ) {
    this.state = new Array<Promise<void> | true | undefined>(Math.ceil(bytes / WINDOW_BYTES));
  }

  /** True when every window of `[start, end)` is already filled (nothing to wait for, nothing to fill). */
  readonly filled = (start: number, end: number): boolean => {
    for (let w = Math.floor(start / WINDOW_BYTES); w < Math.ceil(end / WINDOW_BYTES); w++) if (this.state[w] !== true) return false;
    return true;
  };

  /**
   * Resolves when `[start, end)` is filled. A reader stops waiting at `deadline` (Unix ms) with
   * TC_ERR_TIMEOUT; a window it started filling goes on, and readers after it use or retry it. The windows
   * this reader fills are filled under its deadline and recorded in its `ctx`.
   */
  readonly ready = async (start: number, end: number, deadline = Number.POSITIVE_INFINITY, ctx?: FillContext): Promise<void> => {
    const first = Math.floor(start / WINDOW_BYTES);
    const last = Math.ceil(end / WINDOW_BYTES);
    for (let w = first; w < last; w++) {
      const s = this.state[w];
      if (s === true) continue;
      if (s !== undefined) {
        await withDeadline(s, deadline, `waiting for bytes [${start}, ${end}) of a replica`);
        continue;
      }
      const from = w * WINDOW_BYTES;
      const p = this.fillWindow(from, Math.min(this.bytes, from + WINDOW_BYTES), deadline, ctx).then(
        () => void (this.state[w] = true),
        (error: unknown) => {
          this.state[w] = undefined;
          throw error;
        },
      );
      this.state[w] = p;
      await withDeadline(p, deadline, `filling bytes [${start}, ${end}) of a replica`);
    }
  };
}

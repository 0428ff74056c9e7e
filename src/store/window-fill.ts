// Filling a replica's bytes on demand, window by window, for several concurrent readers.

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
    private readonly fillWindow: (start: number, end: number) => Promise<void>,
  ) {
    this.state = new Array<Promise<void> | true | undefined>(Math.ceil(bytes / WINDOW_BYTES));
  }

  /** Resolves when `[start, end)` is filled. */
  readonly ready = async (start: number, end: number): Promise<void> => {
    const first = Math.floor(start / WINDOW_BYTES);
    const last = Math.ceil(end / WINDOW_BYTES);
    for (let w = first; w < last; w++) {
      const s = this.state[w];
      if (s === true) continue;
      if (s !== undefined) {
        await s;
        continue;
      }
      const from = w * WINDOW_BYTES;
      const p = this.fillWindow(from, Math.min(this.bytes, from + WINDOW_BYTES)).then(
        () => void (this.state[w] = true),
        (error: unknown) => {
          this.state[w] = undefined;
          throw error;
        },
      );
      this.state[w] = p;
      await p;
    }
  };
}

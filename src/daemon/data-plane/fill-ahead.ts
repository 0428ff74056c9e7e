// Reading held bytes that may still be filling (a memory replica fills window by window on demand): the
// sender asks for the next windows before it needs them, so filling window w + 1 overlaps sending window
// w instead of the two taking turns.

import type { FillContext } from '../../store/remote-views.js';

/** Bytes that are filled on demand: `ready` resolves once a range is filled (starting the fill if needed). */
export interface Fillable {
  readonly ready: (start: number, end: number, deadline: number, ctx?: FillContext) => Promise<void>;
}

/**
 * Waits for `[start, end)` of a {@link Fillable} piece by piece, keeping up to `ahead` pieces beyond the one
 * being sent asked for. Pieces are `pieceBytes` long on a grid from 0 (the holder's fill windows).
 *
 * @example
 * const fill = new FillAhead(replica, req.start, req.end, { pieceBytes: WINDOW_BYTES, ahead: 2, deadline, ctx });
 * try { for (...) { await fill.until(at, next); send(at, next); } } finally { await fill.settle(); }
 */
export class FillAhead {
  private readonly pieces = new Map<number, Promise<void>>();
  /** Next piece index not asked for yet. */
  private next: number;
  private readonly last: number;

  constructor(
    private readonly held: Fillable,
    private readonly start: number,
    private readonly end: number,
    private readonly o: { readonly pieceBytes: number; readonly ahead: number; readonly deadline: number; readonly ctx?: FillContext },
  ) {
    this.next = Math.floor(start / o.pieceBytes);
    this.last = Math.ceil(end / o.pieceBytes);
  }

  /**
   * Resolves when `[from, to)` (inside the range, asked for in order) is filled; rejects with the error of
   * the piece that failed (its fill's code, or TC_ERR_TIMEOUT at the deadline).
   */
  async until(from: number, to: number): Promise<void> {
    const first = Math.floor(from / this.o.pieceBytes);
    const needed = Math.ceil(to / this.o.pieceBytes);
    for (; this.next < Math.min(this.last, needed + this.o.ahead); this.next++) this.ask(this.next);
    for (let p = first; p < needed; p++) await this.pieces.get(p);
    // Pieces wholly before `to` are not needed again.
    for (let p = first; p < Math.floor(to / this.o.pieceBytes); p++) this.pieces.delete(p);
  }

  /** Waits until no fill this reader asked for is still running (call before giving the holder back). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.pieces.values());
  }

  private ask(p: number): void {
    const from = Math.max(this.start, p * this.o.pieceBytes);
    const to = Math.min(this.end, (p + 1) * this.o.pieceBytes);
    const ready = this.held.ready(from, to, this.o.deadline, this.o.ctx);
    // Observed when the sender reaches this piece; until then (or if it stops first) not an unhandled rejection.
    ready.catch(() => undefined);
    this.pieces.set(p, ready);
  }
}

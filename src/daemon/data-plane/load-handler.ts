// What the daemon does with a data-plane LOAD: resolve the view on this daemon, then send its bytes from a
// memory replica (frames on a grid, CRC32C cached per replica) or, when no replica is earned or none fits
// the budget, stream them through staging buffers. Says which route and source served the request.

import { tcError } from '../../core/errors.js';
import { parseViewJson } from '../../layout/view.js';
import { crc32c } from '../../protocol/frames.js';
import type { EndBody } from '../../protocol/messages.js';
import { withDeadline } from '../../store/deadline.js';
import type { Replica } from '../../store/replica-cache.js';
import type { ResolvedView, ViewService } from '../../store/view-service.js';
import type { FrameSink, LoadHandler, LoadRequest } from '../../transport/data-server.js';

/** Payload bytes per DATA frame. */
export const FRAME_BYTES = 4 << 20;

/**
 * Serves LOADs from this daemon's views.
 *
 * @example new DataServer({ token, daemonId, log, handler: new ViewLoadHandler(views) });
 */
export class ViewLoadHandler implements LoadHandler {
  /** CRC32C of full grid frames of memory replicas (the bytes of a filled replica never change). */
  private readonly frameCrcs = new WeakMap<Replica, Map<number, number>>();

  constructor(private readonly views: ViewService) {}

  async serve(req: LoadRequest, sink: FrameSink): Promise<Omit<EndBody, 'bytes'>> {
    const spec = req.view === null ? undefined : parseViewJson(JSON.stringify(req.view), 'view');
    const rv = await this.views.resolve(req.artifactId, spec, req.viewId);
    const total = rv.program.totalBytes;
    if (req.end > total) throw tcError('TC_ERR_INVALID_ARGUMENT', `range [${req.start}, ${req.end}) is outside the view's ${total} bytes`);
    const hit = this.views.hasReplica(rv, 'memory');
    const replica = this.views.admit(rv, req.start, req.end) ? await this.views.memoryReplica(rv, req.deadline) : undefined;
    try {
      if (replica !== undefined) await this.sendReplica(req, replica, sink);
      else await this.sendStreamed(req, rv, sink);
    } finally {
      if (replica !== undefined) this.views.cache.release(replica);
    }
    const source = replica === undefined ? 'streamed' : hit ? 'replica_hit' : 'materialized';
    return { route: 'local', source, viewId: rv.view.viewId ?? null };
  }

  /**
   * Sends `[req.start, req.end)` of a memory replica. Frames sit on a grid of FRAME_BYTES over the view's
   * bytes, so a full frame's CRC32C is computed once per replica and reused by every later load.
   */
  private async sendReplica(req: LoadRequest, replica: Replica, sink: FrameSink): Promise<void> {
    let crcs = this.frameCrcs.get(replica);
    if (crcs === undefined) {
      crcs = new Map();
      this.frameCrcs.set(replica, crcs);
    }
    let segStart = 0;
    for (const seg of replica.segments) {
      const segEnd = segStart + seg.length;
      for (let at = Math.max(req.start, segStart); at < Math.min(req.end, segEnd);) {
        const cellEnd = (Math.floor(at / FRAME_BYTES) + 1) * FRAME_BYTES;
        const next = Math.min(req.end, segEnd, cellEnd);
        const n = next - at;
        await replica.ready(at, next, req.deadline);
        await sink.ready(at, n);
        const payload = seg.subarray(at - segStart, next - segStart);
        const fullCell = at % FRAME_BYTES === 0 && (next === cellEnd || next === replica.bytes);
        let crc = fullCell ? crcs.get(at) : undefined;
        if (crc === undefined) {
          crc = crc32c(payload);
          if (fullCell) crcs.set(at, crc);
        }
        // The replica's bytes stay put while it is held: no need to wait for the socket to flush them.
        void sink.send(at, payload, crc);
        at = next;
      }
      segStart = segEnd;
    }
  }

  private async sendStreamed(req: LoadRequest, rv: ResolvedView, sink: FrameSink): Promise<void> {
    // Stages come from the daemon's bounded pool: one is waited for (up to the deadline), a second (double
    // buffering) only taken when free.
    const pool = this.views.stages;
    const first = await pool.acquire(req.deadline, `request ${req.requestId}: waiting for a staging buffer`);
    const second = pool.tryAcquire();
    const stages = second === undefined ? [first] : [first, second];
    // Per stage: resolves when the socket no longer holds any of its bytes. A stage goes back to the pool
    // only then, even when the request fails half-way, so no queued frame can be overwritten.
    const flushed = stages.map(() => Promise.resolve());
    try {
      let which = 0;
      const step = stages[0]!.length;
      for (let start = req.start; start < req.end; start += step) {
        const end = Math.min(req.end, start + step);
        await withDeadline(flushed[which]!, req.deadline, `request ${req.requestId}: waiting for the peer to read`);
        const stage = stages[which]!.subarray(0, end - start);
        await this.views.materializeRange(rv, start, end, stage);
        for (let at = start; at < end; at += FRAME_BYTES) {
          const n = Math.min(FRAME_BYTES, end - at);
          await sink.ready(at, n);
          flushed[which] = sink.send(at, stage.subarray(at - start, at - start + n));
        }
        which = (which + 1) % stages.length;
      }
    } finally {
      // A peer that stops reading past the deadline loses its connection, which lets go of the bytes.
      await withDeadline(Promise.all(flushed), req.deadline, 'flushing').catch(() => {
        sink.abandon();
        return Promise.all(flushed);
      });
      for (const s of stages) pool.release(s);
    }
  }
}

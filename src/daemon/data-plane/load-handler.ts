// What the daemon does with a data-plane LOAD: resolve the view (on this daemon, or known to the cluster),
// then send its bytes from a memory replica (frames on a grid, CRC32C cached per replica), from a
// derived-view export (a peer's `export` fetch, counted with begin/end fetch), or streamed through staging
// buffers (read in blocks while the blocks before them are sent). Peer modes (docs/protocol.md): `resident` serves only a view already held in memory,
// `canonical` streams canonical bytes without caching. Says which route and source served the request.

import { tcError } from '../../core/errors.js';
import { parseViewJson } from '../../layout/view.js';
import { crc32c } from '../../protocol/frames.js';
import { crc32cAsync } from '../../bytes/crc32c.js';
import type { EndBody } from '../../protocol/messages.js';
import type { ExportCache } from '../../store/export-cache.js';
import { newFillContext, type FillContext } from '../../store/remote-views.js';
import type { Replica } from '../../store/replica-cache.js';
import type { ResolvedView, ViewService } from '../../store/view-service.js';
import type { FrameSink, LoadHandler, LoadRequest } from '../../transport/data-server.js';
import { WINDOW_BYTES } from '../../store/window-fill.js';
import { FillAhead } from './fill-ahead.js';
import { sendPipelined } from './send-pipelined.js';

/** Payload bytes per DATA frame. */
export const FRAME_BYTES = 4 << 20;

/** Output bytes per block of a view streamed from local files (a production of its own, sent when it landed). */
export const BLOCK_BYTES = 4 << 20;

/** Blocks of one streamed request being read at once (the libuv pool has 4 threads by default). */
const BLOCKS_IN_FLIGHT = 4;

/** Fill windows of a replica asked for beyond the one being sent (each is read with several reads at once). */
const FILL_AHEAD_WINDOWS = 2;

/** Export CRC tables kept (one per export generation; the oldest goes first). */
const MAX_EXPORT_CRC_TABLES = 256;

/** The device of the exports this daemon serves (host memory). */
export const EXPORT_DEVICE = 'cpu';

/** Bytes already in memory, as the sender sees them: segments and a way to wait for a range to be filled. */
interface HeldBytes {
  readonly bytes: number;
  readonly segments: readonly Buffer[];
  readonly ready: (start: number, end: number, deadline: number, ctx?: FillContext) => Promise<void>;
}

/** How LOADs from other daemons are served. */
export interface PeerServeOptions {
  /** Hears about bytes sent to other daemons, by peer mode (metrics). */
  readonly onPeerSent?: (mode: 'resident' | 'export' | 'canonical', bytes: number) => void;
  /** Fault injection (daemon/faults.ts): a wait in each request from another daemon (after its begin fetch). */
  readonly delayMs?: number;
}

/**
 * Serves LOADs from this daemon's views.
 *
 * @example new DataServer({ token, daemonId, log, handler: new ViewLoadHandler(views, exports) });
 */
export class ViewLoadHandler implements LoadHandler {
  /** CRC32C of full grid frames of memory replicas (a filled replica's bytes never change). */
  private readonly frameCrcs = new WeakMap<Replica, Map<number, number>>();
  /** The same for exports, by entry id and generation (entries are handed out as snapshots). */
  private readonly exportCrcs = new Map<string, Map<number, number>>();

  constructor(
    private readonly views: ViewService,
    private readonly exports?: ExportCache,
    private readonly peerOptions: PeerServeOptions = {},
  ) {}

  async serve(req: LoadRequest, sink: FrameSink): Promise<Omit<EndBody, 'bytes'>> {
    const spec = req.view === null ? undefined : parseViewJson(JSON.stringify(req.view), 'view');
    const rv = await this.views.resolve(req.artifactId, spec, req.viewId);
    const total = rv.program.totalBytes;
    if (req.end > total) throw tcError('TC_ERR_INVALID_ARGUMENT', `range [${req.start}, ${req.end}) is outside the view's ${total} bytes`);
    const mode = req.peer?.mode;
    if (mode !== undefined) {
      const end = await this.servePeer(mode, req, rv, sink);
      this.peerOptions.onPeerSent?.(mode, req.end - req.start);
      return end;
    }
    const choice = req.route ?? 'auto';
    const ctx = newFillContext();
    if (choice !== 'auto') {
      // A forced route (diagnosis, benchmarks): always from other daemons, streamed, nothing kept.
      await this.sendStreamed(req, rv, sink, ctx, choice);
      return this.end(rv, 'streamed', ctx);
    }
    const hit = this.views.hasReplica(rv, 'memory');
    const replica = this.views.admit(rv, req.start, req.end) ? await this.views.memoryReplica(rv, req.deadline) : undefined;
    try {
      if (replica !== undefined) await this.sendHeld(req, this.replicaCrcs(replica), replica, sink, ctx);
      else await this.sendStreamed(req, rv, sink, ctx);
    } finally {
      if (replica !== undefined) this.views.cache.release(replica);
    }
    return this.end(rv, replica === undefined ? 'streamed' : hit ? 'replica_hit' : 'materialized', ctx);
  }

  /** A LOAD from another daemon, by its peer mode. */
  private async servePeer(
    mode: 'resident' | 'export' | 'canonical',
    req: LoadRequest,
    rv: ResolvedView,
    sink: FrameSink,
  ): Promise<Omit<EndBody, 'bytes'>> {
    const viewId = rv.view.viewId ?? null;
    if (mode === 'export') return this.serveExport(req, rv, sink);
    await this.faultDelay();
    if (mode === 'canonical') {
      if (rv.local === undefined || rv.view.viewId !== undefined)
        throw tcError('TC_ERR_NOT_FOUND', `no canonical bytes of ${req.artifactId} on this daemon`, { details: { reason: 'no_source' } });
      await this.sendStreamed(req, rv, sink, newFillContext());
      return { route: 'local', source: 'streamed', viewId };
    }
    return this.serveResident(req, rv, sink);
  }

  /** The END fields: `local` unless this request's bytes came from other daemons. */
  private end(rv: ResolvedView, source: string, ctx: FillContext): Omit<EndBody, 'bytes'> {
    const viewId = rv.view.viewId ?? null;
    if (ctx.route === undefined) return { route: 'local', source, viewId, readBytes: ctx.readBytes };
    return {
      route: ctx.route,
      source,
      viewId,
      fallback: ctx.fallback ?? null,
      sourceDaemon: ctx.sourceDaemon ?? null,
      wireBytes: ctx.wireBytes,
      readBytes: ctx.readBytes,
    };
  }

  /** A peer's `resident` fetch: only from an export or a memory replica this daemon already holds. */
  private async serveResident(req: LoadRequest, rv: ResolvedView, sink: FrameSink): Promise<Omit<EndBody, 'bytes'>> {
    const viewId = rv.view.viewId ?? null;
    if (viewId !== null && this.exports?.get({ artifactId: req.artifactId, viewId, device: EXPORT_DEVICE })?.state === 'ready') {
      return this.serveExport(req, rv, sink);
    }
    if (!this.views.hasReplica(rv, 'memory')) {
      throw tcError('TC_ERR_NOT_FOUND', `view ${viewId ?? 'identity'} of ${req.artifactId} is not resident on this daemon`, {
        details: { reason: 'view_probe_unavailable' },
      });
    }
    const replica = await this.views.memoryReplica(rv, req.deadline);
    if (replica === undefined)
      throw tcError('TC_ERR_NOT_FOUND', `view ${viewId ?? 'identity'} is no longer resident`, {
        details: { reason: 'view_probe_unavailable' },
      });
    try {
      // A replica of an artifact stored elsewhere fills from other daemons: serving bytes it does not hold
      // yet would relay them, and two daemons relaying a view for each other wait on each other until
      // their deadlines. The peer goes to a daemon that stores the artifact instead.
      if (rv.local === undefined && replica.filled?.(req.start, req.end) === false) {
        throw tcError('TC_ERR_NOT_FOUND', `view ${viewId ?? 'identity'} of ${req.artifactId} is still being filled on this daemon`, {
          details: { reason: 'view_probe_unavailable' },
        });
      }
      await this.sendHeld(req, this.replicaCrcs(replica), replica, sink, newFillContext());
    } finally {
      this.views.cache.release(replica);
    }
    return { route: 'local', source: 'replica_hit', viewId };
  }

  /** A peer's `export` fetch: begin fetch (refreshes the TTL, counts it), send, end fetch. */
  private async serveExport(req: LoadRequest, rv: ResolvedView, sink: FrameSink): Promise<Omit<EndBody, 'bytes'>> {
    const viewId = rv.view.viewId;
    if (this.exports === undefined || viewId === undefined) {
      throw tcError('TC_ERR_EXPORT_UNAVAILABLE', 'this daemon keeps no derived-view exports', { details: { reason: 'not_found' } });
    }
    const transferId = req.peer?.transferId ?? `request-${req.requestId}`;
    const entry = this.exports.beginFetch({ artifactId: req.artifactId, viewId, device: EXPORT_DEVICE }, transferId);
    try {
      await this.faultDelay();
      const held: HeldBytes = { bytes: entry.bytes, segments: entry.segments, ready: () => Promise.resolve() };
      const id = `${entry.id}#${entry.generation}`;
      let crcs = this.exportCrcs.get(id);
      if (crcs === undefined) {
        crcs = new Map();
        if (this.exportCrcs.size >= MAX_EXPORT_CRC_TABLES) this.exportCrcs.delete(this.exportCrcs.keys().next().value!);
        this.exportCrcs.set(id, crcs);
      }
      await this.sendHeld(req, crcs, held, sink, newFillContext());
    } finally {
      this.exports.endFetch(transferId, 'sent');
    }
    return { route: 'local', source: 'export', viewId };
  }

  /** Fault injection (tests): holds a request from another daemon for a while, its fetch counted. */
  private async faultDelay(): Promise<void> {
    const ms = this.peerOptions.delayMs ?? 0;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  }

  private replicaCrcs(replica: Replica): Map<number, number> {
    let crcs = this.frameCrcs.get(replica);
    if (crcs === undefined) {
      crcs = new Map();
      this.frameCrcs.set(replica, crcs);
    }
    return crcs;
  }

  /**
   * Sends `[req.start, req.end)` of bytes held in memory. Frames sit on a grid of FRAME_BYTES over the
   * view's bytes, so a full frame's CRC32C is computed once per holder and reused by every later load.
   */
  private async sendHeld(req: LoadRequest, crcs: Map<number, number>, held: HeldBytes, sink: FrameSink, ctx: FillContext): Promise<void> {
    // A replica still filling: the windows ahead are filled while the ones before them are sent.
    const fill = new FillAhead(held, req.start, req.end, {
      pieceBytes: WINDOW_BYTES,
      ahead: FILL_AHEAD_WINDOWS,
      deadline: req.deadline,
      ctx,
    });
    try {
      let segStart = 0;
      for (const seg of held.segments) {
        const segEnd = segStart + seg.length;
        for (let at = Math.max(req.start, segStart); at < Math.min(req.end, segEnd);) {
          const cellEnd = (Math.floor(at / FRAME_BYTES) + 1) * FRAME_BYTES;
          const next = Math.min(req.end, segEnd, cellEnd);
          const n = next - at;
          await fill.until(at, next);
          await sink.ready(at, n);
          const payload = seg.subarray(at - segStart, next - segStart);
          const fullCell = at % FRAME_BYTES === 0 && (next === cellEnd || next === held.bytes);
          let crc = fullCell ? crcs.get(at) : undefined;
          if (crc === undefined) {
            crc = crc32c(payload);
            if (fullCell) crcs.set(at, crc);
          }
          // The held bytes stay put while they are held: no need to wait for the socket to flush them.
          void sink.send(at, payload, crc);
          at = next;
        }
        segStart = segEnd;
      }
    } finally {
      // Fills asked for ahead write into the replica: none may still run once the caller lets go of it.
      await fill.settle();
    }
  }

  private async sendStreamed(
    req: LoadRequest,
    rv: ResolvedView,
    sink: FrameSink,
    ctx: FillContext,
    choice: 'auto' | 'resident_view' | 'derived_view' | 'canonical' = 'auto',
  ): Promise<void> {
    // Stages come from the daemon's bounded pool: one is waited for (up to the deadline), a second only
    // taken when free. They go back only once the pipeline let go of them: no production still writing,
    // no frame of theirs still queued on the socket.
    const pool = this.views.stages;
    const first = await pool.acquire(req.deadline, `request ${req.requestId}: waiting for a staging buffer`);
    const second = req.end - req.start > first.length ? pool.tryAcquire() : undefined;
    const stages = second === undefined ? [first] : [first, second];
    try {
      // Local files: small blocks, several read at once, each sent as soon as it landed. Bytes pulled from
      // other daemons or a connector come in larger pieces (each a request of its own): one per stage.
      const local = choice === 'auto' && rv.local !== undefined && rv.local.lazy === undefined;
      const blockBytes = local ? Math.min(BLOCK_BYTES, first.length) : first.length;
      const slots = stages.flatMap((stage) => {
        const out: Buffer[] = [];
        for (let at = 0; at + blockBytes <= stage.length; at += blockBytes) out.push(stage.subarray(at, at + blockBytes));
        return out;
      });
      await sendPipelined(
        {
          start: req.start,
          end: req.end,
          slots,
          blockBytes,
          frameBytes: FRAME_BYTES,
          maxInFlight: local ? BLOCKS_IN_FLIGHT : slots.length,
          deadline: req.deadline,
          what: `request ${req.requestId}`,
          produce: (start, end, dest) => this.views.materializeRange(rv, start, end, dest, req.deadline, ctx, choice),
          crc: crc32cAsync,
        },
        sink,
      );
    } finally {
      for (const s of stages) pool.release(s);
    }
  }
}

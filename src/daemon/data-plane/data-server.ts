// The data-plane server: TCP, one FrameDecoder per connection. A connection must say HELLO with the token
// first; then LOAD requests are served one at a time: the view's bytes in DATA frames, sent while the
// client has granted credit and the socket is not backed up, then END (or ERROR with the code). A malformed
// stream closes that connection only.

import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { TensorcastError, tcError } from '../../core/errors.js';
import { FrameDecoder } from '../../protocol/frame-decoder.js';
import { crc32c, encodeControl, encodeDataHeader, encodeHeader, FrameType, parseControl, type FrameHeader } from '../../protocol/frames.js';
import { parseViewJson } from '../../layout/view.js';
import type { Replica } from '../../store/replica-cache.js';
import type { ResolvedView } from '../../store/view-service.js';
import { withDeadline } from '../../store/deadline.js';
import type { DaemonContext } from '../context.js';
import { tokenMatches } from '../token.js';

/** Payload bytes per DATA frame. */
const FRAME_BYTES = 4 << 20;
const HELLO_TIMEOUT_MS = 5000;
/** CRC32C of full grid frames of memory replicas (the bytes of a filled replica never change). */
const FRAME_CRCS = new WeakMap<Replica, Map<number, number>>();

interface LoadRequest {
  readonly id: number;
  readonly artifactId: string;
  readonly view: Record<string, unknown> | null;
  readonly viewId: string | null;
  readonly start: number;
  readonly end: number;
  granted: number;
  readonly deadline: number;
}

/** The data-plane listener. */
export class DataServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly ctx: DaemonContext) {
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  /** Starts listening; resolves with the bound address. */
  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const a = this.server.address();
        resolve(typeof a === 'object' && a !== null ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : String(a));
      });
    });
  }

  /** Stops accepting; waits up to `deadlineMs` for requests in flight, then closes every connection. */
  async close(deadlineMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.active > 0) {
      await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), new Promise<void>((r) => setTimeout(r, deadlineMs).unref())]);
    }
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    this.ctx.metrics.connections.inc();
    const conn = new ServerConnection(socket, this.ctx, (delta) => {
      this.active += delta;
      if (this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.ctx.metrics.connections.dec();
      conn.closed();
    });
  }
}

class ServerConnection {
  private helloDone = false;
  private readonly decoder: FrameDecoder;
  private readonly queue: LoadRequest[] = [];
  private current: LoadRequest | undefined;
  private wake: (() => void) | undefined;
  private cancelled = new Set<number>();
  private isClosed = false;
  private readonly helloTimer: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: DaemonContext,
    private readonly track: (delta: number) => void,
  ) {
    this.decoder = new FrameDecoder({ onFrame: (h, p) => this.onFrame(h, p), maxDataBytes: 0 });
    this.helloTimer = setTimeout(() => this.fail(tcError('TC_ERR_PROTOCOL', 'data plane: no HELLO within 5 s')), HELLO_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch (error) {
        this.fail(error);
      }
    });
    socket.on('error', () => undefined);
    socket.on('drain', () => this.poke());
  }

  closed(): void {
    this.isClosed = true;
    clearTimeout(this.helloTimer);
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** A connection-level error: tell the peer, then close. */
  private fail(error: unknown): void {
    if (this.isClosed) return;
    const e = error instanceof TensorcastError ? error : tcError('TC_ERR_PROTOCOL', String(error));
    if (e.code === 'TC_ERR_PROTOCOL') this.ctx.metrics.protocolErrors.inc();
    this.ctx.log.warn({ code: e.code, remote: this.socket.remoteAddress }, `data-plane connection closed: ${e.message}`);
    this.socket.end(encodeControl(FrameType.ERROR, 0, { code: e.code, message: e.message, retryable: e.retryable }));
    this.socket.destroySoon();
    this.isClosed = true;
  }

  private onFrame(h: FrameHeader, payload: Uint8Array): void {
    if (!this.helloDone) {
      if (h.type !== FrameType.HELLO) throw tcError('TC_ERR_PROTOCOL', 'data plane: expected HELLO first');
      const hello = parseControl(payload, 'HELLO');
      clearTimeout(this.helloTimer);
      if (hello['version'] !== 1)
        throw tcError('TC_ERR_PROTOCOL', `data plane: client speaks version ${String(hello['version'])}, daemon speaks 1`);
      if (!tokenMatches(typeof hello['token'] === 'string' ? hello['token'] : undefined, this.ctx.token)) {
        throw tcError('TC_ERR_AUTH', 'data plane: wrong or missing token');
      }
      this.helloDone = true;
      this.socket.write(encodeControl(FrameType.WELCOME, 0, { daemonId: this.ctx.daemonId, version: 1, frameBytes: FRAME_BYTES }));
      return;
    }
    switch (h.type) {
      case FrameType.LOAD:
        this.queue.push(parseLoad(h.requestId, parseControl(payload, 'LOAD')));
        if (this.current === undefined) void this.drainQueue();
        return;
      case FrameType.CREDIT: {
        const target = this.current?.id === h.requestId ? this.current : this.queue.find((r) => r.id === h.requestId);
        if (target !== undefined) target.granted += h.offset;
        this.poke();
        return;
      }
      case FrameType.CANCEL:
        this.cancelled.add(h.requestId);
        this.poke();
        return;
      case FrameType.HELLO:
      case FrameType.WELCOME:
      case FrameType.DATA:
      case FrameType.END:
      case FrameType.ERROR:
        throw tcError('TC_ERR_PROTOCOL', `data plane: unexpected frame type ${h.type} from a client`);
    }
  }

  private async drainQueue(): Promise<void> {
    while (this.queue.length > 0 && !this.isClosed) {
      const req = this.queue.shift()!;
      this.current = req;
      this.track(1);
      const t0 = performance.now();
      let source = 'materialized';
      try {
        source = await this.serve(req);
        this.ctx.metrics.loads.inc({ route: 'local', transport: 'tcp', source, outcome: 'ok' });
      } catch (error) {
        const e = error instanceof TensorcastError ? error : tcError('TC_ERR_INTERNAL', String(error), { cause: error });
        this.ctx.metrics.loads.inc({
          route: 'local',
          transport: 'tcp',
          source,
          outcome: e.code === 'TC_ERR_ABORTED' ? 'cancelled' : 'error',
        });
        if (!this.isClosed)
          this.socket.write(encodeControl(FrameType.ERROR, req.id, { code: e.code, message: e.message, retryable: e.retryable }));
        if (e.category === 'Internal') this.ctx.log.error({ err: e }, 'data-plane load failed');
      } finally {
        this.ctx.metrics.loadSeconds.observe({ transport: 'tcp' }, (performance.now() - t0) / 1000);
        this.cancelled.delete(req.id);
        this.current = undefined;
        this.track(-1);
      }
    }
  }

  private async serve(req: LoadRequest): Promise<string> {
    if (this.ctx.draining) throw tcError('TC_ERR_SHUTTING_DOWN', 'the daemon is shutting down');
    const spec = req.view === null ? undefined : parseViewJson(JSON.stringify(req.view), 'view');
    const rv = await this.ctx.views.resolve(req.artifactId, spec, req.viewId);
    const total = rv.program.totalBytes;
    if (!(req.start >= 0 && req.start <= req.end && req.end <= total)) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `range [${req.start}, ${req.end}) is outside the view's ${total} bytes`);
    }
    const hit = this.ctx.views.hasReplica(rv, 'memory');
    const replica = this.ctx.views.admit(rv, req.start, req.end) ? await this.ctx.views.memoryReplica(rv, req.deadline) : undefined;
    try {
      if (replica !== undefined) await this.sendReplica(req, replica);
      else await this.sendStreamed(req, rv);
    } finally {
      if (replica !== undefined) this.ctx.views.cache.release(replica);
    }
    const source = replica === undefined ? 'streamed' : hit ? 'replica_hit' : 'materialized';
    this.ctx.metrics.bytesDelivered.inc({ transport: 'tcp' }, req.end - req.start);
    this.socket.write(
      encodeControl(FrameType.END, req.id, { bytes: req.end - req.start, route: 'local', source, viewId: rv.view.viewId ?? null }),
    );
    return source;
  }

  /** Waits until `bytes` more may be sent: credit granted, socket not backed up. */
  private async ready(req: LoadRequest, sent: number, bytes: number): Promise<void> {
    for (;;) {
      if (this.isClosed) throw tcError('TC_ERR_ABORTED', 'connection closed');
      if (this.cancelled.has(req.id)) throw tcError('TC_ERR_ABORTED', `request ${req.id} cancelled`);
      const left = req.deadline - Date.now();
      if (left <= 0)
        throw tcError('TC_ERR_TIMEOUT', `request ${req.id}: deadline passed after ${sent - req.start} of ${req.end - req.start} bytes`);
      if (req.granted - (sent - req.start) >= bytes && this.socket.writableLength < 2 * FRAME_BYTES) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, Math.min(left, 1000)).unref();
      });
    }
  }

  /**
   * Sends `[req.start, req.end)` of a memory replica. Frames sit on a grid of FRAME_BYTES over the view's
   * bytes, so a full frame's CRC32C is computed once per replica and reused by every later load.
   */
  private async sendReplica(req: LoadRequest, replica: Replica): Promise<void> {
    let crcs = FRAME_CRCS.get(replica);
    if (crcs === undefined) {
      crcs = new Map();
      FRAME_CRCS.set(replica, crcs);
    }
    let segStart = 0;
    for (const seg of replica.segments) {
      const segEnd = segStart + seg.length;
      for (let at = Math.max(req.start, segStart); at < Math.min(req.end, segEnd);) {
        const cellEnd = (Math.floor(at / FRAME_BYTES) + 1) * FRAME_BYTES;
        const next = Math.min(req.end, segEnd, cellEnd);
        const n = next - at;
        await replica.ready(at, next, req.deadline);
        await this.ready(req, at, n);
        const payload = seg.subarray(at - segStart, next - segStart);
        const fullCell = at % FRAME_BYTES === 0 && (next === cellEnd || next === replica.bytes);
        let crc = fullCell ? crcs.get(at) : undefined;
        if (crc === undefined) {
          crc = crc32c(payload);
          if (fullCell) crcs.set(at, crc);
        }
        this.socket.cork();
        this.socket.write(encodeHeader(FrameType.DATA, req.id, n, at, crc));
        this.socket.write(payload);
        this.socket.uncork();
        at = next;
      }
      segStart = segEnd;
    }
  }

  private async sendStreamed(req: LoadRequest, rv: ResolvedView): Promise<void> {
    // Stages come from the daemon's bounded pool: one is waited for (up to the deadline), a second (double
    // buffering) only taken when free.
    const pool = this.ctx.views.stages;
    const first = await pool.acquire(req.deadline, `request ${req.id}: waiting for a staging buffer`);
    const second = pool.tryAcquire();
    const stages = second === undefined ? [first] : [first, second];
    // Per stage: resolves when the socket no longer holds any of its bytes. A stage goes back to the pool
    // only then, even when the request fails half-way, so no queued frame can be overwritten.
    const flushed = stages.map(() => Promise.resolve());
    try {
      await this.sendThrough(req, rv, stages, flushed);
    } finally {
      // A peer that stops reading past the deadline loses its connection, which lets go of the bytes.
      await withDeadline(Promise.all(flushed), req.deadline, 'flushing').catch(() => {
        this.socket.destroy();
        return Promise.all(flushed);
      });
      for (const s of stages) pool.release(s);
    }
  }

  private async sendThrough(req: LoadRequest, rv: ResolvedView, stages: Buffer[], flushed: Promise<void>[]): Promise<void> {
    let which = 0;
    const step = stages[0]!.length;
    for (let start = req.start; start < req.end; start += step) {
      const end = Math.min(req.end, start + step);
      await withDeadline(flushed[which]!, req.deadline, `request ${req.id}: waiting for the peer to read`);
      const stage = stages[which]!.subarray(0, end - start);
      await this.ctx.views.materializeRange(rv, start, end, stage);
      for (let at = start; at < end; at += FRAME_BYTES) {
        const n = Math.min(FRAME_BYTES, end - at);
        await this.ready(req, at, n);
        const payload = stage.subarray(at - start, at - start + n);
        this.socket.cork();
        this.socket.write(encodeDataHeader(req.id, at, payload));
        // Called when written, or with an error when the socket is destroyed: either way the bytes are released.
        flushed[which] = new Promise<void>((resolve) => this.socket.write(payload, () => resolve()));
        this.socket.uncork();
      }
      which = (which + 1) % stages.length;
    }
  }
}

function parseLoad(id: number, body: Record<string, unknown>): LoadRequest {
  const int = (k: string): number => {
    const v = body[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw tcError('TC_ERR_PROTOCOL', `data plane: LOAD.${k} must be a non-negative integer`);
    return v;
  };
  if (typeof body['artifactId'] !== 'string') throw tcError('TC_ERR_PROTOCOL', 'data plane: LOAD.artifactId must be a string');
  const view = body['view'];
  if (view !== null && (typeof view !== 'object' || Array.isArray(view)))
    throw tcError('TC_ERR_PROTOCOL', 'data plane: LOAD.view must be an object or null');
  const viewId = body['viewId'];
  if (viewId !== null && typeof viewId !== 'string') throw tcError('TC_ERR_PROTOCOL', 'data plane: LOAD.viewId must be a string or null');
  const timeoutMs = body['timeoutMs'] === undefined ? 24 * 3600_000 : int('timeoutMs');
  return {
    id,
    artifactId: body['artifactId'],
    view: view as Record<string, unknown> | null,
    viewId: viewId,
    start: int('start'),
    end: int('end'),
    granted: int('credit'),
    deadline: Date.now() + timeoutMs,
  };
}

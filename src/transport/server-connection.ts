// One data-plane connection on the server side. Before HELLO it accepts only a small frame and only for
// a short time (an unauthenticated peer can make the server hold a few KiB, never megabytes); after the
// token matched, LOADs are queued and served one at a time through the owner's LoadHandler, with credit,
// socket backpressure, CANCEL and the request's deadline enforced in FrameSink.ready(). Object PUTs and GETs
// (docs/protocol.md "Objects") go through the same queue: a PUT's DATA frames land straight in the pending
// object's memory through the decoder's sink, within the CREDIT this side grants; a GET sends like a LOAD.
// Session SAPPENDs and SREADs (docs/protocol.md "Sessions") are served the same way: an append as a PUT whose
// bytes land in the session cache's reserved hot memory, a read as a GET of the range's chunks.

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { TensorcastError, tcError } from '../core/errors.js';
import { tokenMatches } from '../core/secrets.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import {
  crc32c,
  encodeHeader,
  FrameType,
  MAX_CONTROL_BYTES,
  MAX_DATA_BYTES,
  PROTOCOL_VERSION,
  type FrameHeader,
} from '../protocol/frames.js';
import { Done, encodeError, End, Get, Hello, Info, Load, Put, PUT_EAGER_MAX_BYTES, Welcome } from '../protocol/messages.js';
import type { GetBody } from '../protocol/messages.js';
import { SAppend, SessionDone, SessionInfo, SRead, type SReadBody } from '../protocol/session-messages.js';
import type { ConnectionOptions, FrameSink, LoadRequest } from './data-server.js';
import { appendReceiver, framesOf, objectReceiver, serveOptions, sessionsNotEnabled, type Receiver } from './session-serving.js';

/** Failed PUTs a connection remembers, so DATA its client sent before hearing of the failure is dropped. */
const FAILED_PUTS_KEPT = 64;

/** Scratch buffers one connection keeps for reuse. */
const SPARE_BUFFERS_KEPT = 4;

/** The first CREDIT a PUT gets: how many bytes the client may send before any landed. */
const PUT_WINDOW_BYTES = 64 << 20;

/** What every queued request has: credit (bytes the peer allows this side to send, or granted to the peer for a PUT). */
interface Common {
  readonly requestId: number;
  readonly deadline: number;
  granted: number;
}
/** A LOAD in the queue. */
interface LoadPending extends LoadRequest, Common {
  readonly kind: 'load';
}
/** A GET (or a session SREAD) in the queue. */
type GetPending = Common & ({ readonly kind: 'get'; readonly body: GetBody } | { readonly kind: 'sread'; readonly body: SReadBody });
/** A PUT (or a session SAPPEND) in the queue, and, once served, where its bytes stand. */
interface PutPending extends Common {
  readonly kind: 'put';
  readonly op: 'put' | 'append';
  /** Bytes that follow. */
  readonly size: number;
  /** Names the request in errors ("put of ns/a", "append to session s"). */
  readonly label: string;
  /** Validates and reserves room: where the bytes land and how the request ends. */
  readonly begin: () => Promise<Receiver>;
  session: Receiver | undefined;
  /** Accepting DATA (reserved, not failed, not complete). */
  active: boolean;
  /** Offset the next DATA frame must start at. */
  expected: number;
  /** Bytes landed (checksum good, written). */
  landed: number;
  /**
   * Where the frame being read lands: `direct` in the object's memory, `write` in scratch then
   * {@link ObjectPutSession.write}, `early` in the connection's eager buffer (DATA sent ahead of CREDIT that
   * arrived before the put's room was reserved; landed once it is).
   */
  mode: 'direct' | 'write' | 'early';
  /** End of the eager DATA held in the connection's eager buffer (bytes [earlyLanded, early) wait for the reservation). */
  early: number;
  /** Eager bytes already landed in the object. */
  earlyLanded: number;
  /** Writes of frames that landed in scratch (disk tier), in order. */
  writing: Promise<void>;
  failed: Error | undefined;
}
/** A queued request. */
type Pending = LoadPending | GetPending | PutPending;

/** Server side of one connection. */
export class ServerConnection {
  private authenticated = false;
  private readonly decoder: FrameDecoder;
  private readonly queue: Pending[] = [];
  private current: Pending | undefined;
  private wake: (() => void) | undefined;
  private readonly cancelled = new Set<number>();
  private isClosed = false;
  private readonly helloTimer: NodeJS.Timeout;
  /** Where DATA frames of failed PUTs are read and dropped (grown on demand, reused). */
  private dropScratch: Buffer | undefined;
  /**
   * Buffers frames land in before they are written (disk-tier puts) and GET chunks are read from disk into,
   * kept for reuse: fresh pages cost a fault each (tens of microseconds on some hosts).
   */
  private readonly spare: Buffer[] = [];
  /** The memory of every spare handed out, so only those come back. */
  private readonly spareMemory = new WeakSet<ArrayBufferLike>();
  /** PUTs that failed after credit was granted (most recent last): their DATA still in flight is dropped. */
  private readonly failedPuts: number[] = [];
  /**
   * Eager DATA of the current PUT that arrived before its room was reserved (at most PUT_EAGER_MAX_BYTES:
   * one put's eager bytes; allocated on first use and reused, so its pages stay resident).
   */
  private eagerBuffer: Buffer | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly opts: ConnectionOptions,
    private readonly track: (delta: 1 | -1) => void,
  ) {
    this.decoder = new FrameDecoder({
      onFrame: (h, p, ok) => this.onFrame(h, p, ok),
      sink: (h) => this.sink(h),
      maxDataBytes: 0,
      maxControlBytes: opts.preAuthFrameBytes,
    });
    this.helloTimer = setTimeout(
      () => this.fail(tcError('TC_ERR_PROTOCOL', `data plane: no HELLO within ${opts.helloTimeoutMs} ms`)),
      opts.helloTimeoutMs,
    );
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

  /** The socket closed: stop everything this connection was doing. */
  closed(): void {
    this.isClosed = true;
    clearTimeout(this.helloTimer);
    this.poke();
  }

  /** Closes the socket at once (shutdown). */
  destroy(): void {
    this.socket.destroy();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** A connection-level error: tell the peer (when it may hear it), then close. */
  private fail(error: unknown): void {
    if (this.isClosed) return;
    const e = error instanceof TensorcastError ? error : tcError('TC_ERR_PROTOCOL', String(error));
    if (e.code === 'TC_ERR_PROTOCOL') this.opts.onProtocolError();
    this.opts.log.warn({ code: e.code, remote: this.socket.remoteAddress }, `data-plane connection closed: ${e.message}`);
    this.isClosed = true;
    clearTimeout(this.helloTimer);
    this.socket.end(encodeError(0, e));
    this.socket.destroySoon();
  }

  private onFrame(h: FrameHeader, payload: Uint8Array, checksumOk: boolean): void {
    if (!this.authenticated) {
      if (h.type !== FrameType.HELLO) throw tcError('TC_ERR_PROTOCOL', 'data plane: expected HELLO first');
      const hello = Hello.decode(payload);
      clearTimeout(this.helloTimer);
      if (hello.version !== PROTOCOL_VERSION)
        throw tcError('TC_ERR_PROTOCOL', `data plane: client speaks version ${hello.version}, this daemon speaks ${PROTOCOL_VERSION}`);
      if (!tokenMatches(hello.token, this.opts.token)) throw tcError('TC_ERR_AUTH', 'data plane: wrong or missing token');
      this.authenticated = true;
      this.decoder.setLimits({ maxControlBytes: MAX_CONTROL_BYTES, maxDataBytes: MAX_DATA_BYTES });
      this.socket.write(Welcome.encode(0, { daemonId: this.opts.daemonId, version: PROTOCOL_VERSION, frameBytes: this.opts.frameBytes }));
      return;
    }
    switch (h.type) {
      case FrameType.LOAD: {
        const body = Load.decode(payload);
        if (body.end < body.start) throw tcError('TC_ERR_PROTOCOL', `data plane: LOAD range [${body.start}, ${body.end}) is reversed`);
        this.enqueue({ ...body, kind: 'load', requestId: h.requestId, deadline: deadlineOf(body.timeoutMs), granted: body.credit });
        return;
      }
      case FrameType.PUT: {
        const body = Put.decode(payload);
        const id = h.requestId;
        const deadline = deadlineOf(body.timeoutMs);
        const begin = async (): Promise<Receiver> =>
          objectReceiver(id, body.size, body.crc, await this.objects().beginPut({ ...body, requestId: id, deadline }));
        this.enqueuePut('put', id, body, `put of ${body.key}`, deadline, begin);
        return;
      }
      case FrameType.SAPPEND: {
        const body = SAppend.decode(payload);
        const begin = (): Promise<Receiver> => appendReceiver(this.opts.sessions, h.requestId, body);
        this.enqueuePut('append', h.requestId, body, `append to session ${body.sessionId}`, deadlineOf(body.timeoutMs), begin);
        return;
      }
      case FrameType.GET: {
        const body = Get.decode(payload);
        this.enqueue({ kind: 'get', body, requestId: h.requestId, deadline: deadlineOf(body.timeoutMs), granted: body.credit });
        return;
      }
      case FrameType.SREAD: {
        const body = SRead.decode(payload);
        this.enqueue({ kind: 'sread', body, requestId: h.requestId, deadline: deadlineOf(body.timeoutMs), granted: body.credit });
        return;
      }
      case FrameType.DATA:
        this.onData(h, payload, checksumOk);
        return;
      case FrameType.CREDIT: {
        const target = this.current?.requestId === h.requestId ? this.current : this.queue.find((r) => r.requestId === h.requestId);
        // Credit for a PUT flows the other way (daemon -> client): one from the client means nothing.
        if (target !== undefined && target.kind !== 'put') target.granted += h.offset;
        this.poke();
        return;
      }
      case FrameType.CANCEL:
        if (this.current?.requestId === h.requestId || this.queue.some((r) => r.requestId === h.requestId)) this.cancelled.add(h.requestId);
        this.poke();
        return;
      case FrameType.HELLO:
      case FrameType.WELCOME:
      case FrameType.END:
      case FrameType.ERROR:
      case FrameType.INFO:
      case FrameType.DONE:
        throw tcError('TC_ERR_PROTOCOL', `data plane: unexpected frame type ${h.type} from a client`);
    }
  }

  /** Queues a PUT or SAPPEND. Eager bytes count as granted; they are accepted only for one served at once (see sink). */
  private enqueuePut(
    op: PutPending['op'],
    requestId: number,
    body: { readonly size: number; readonly eager?: number | undefined },
    label: string,
    deadline: number,
    begin: () => Promise<Receiver>,
  ): void {
    this.enqueue({
      kind: 'put',
      op,
      size: body.size,
      label,
      begin,
      requestId,
      deadline,
      granted: body.eager ?? 0,
      session: undefined,
      active: (body.eager ?? 0) > 0,
      expected: 0,
      landed: 0,
      mode: 'direct',
      early: 0,
      earlyLanded: 0,
      writing: Promise.resolve(),
      failed: undefined,
    });
  }

  private enqueue(req: Pending): void {
    if (this.queue.length >= this.opts.maxQueuedLoads)
      throw tcError('TC_ERR_PROTOCOL', `data plane: more than ${this.opts.maxQueuedLoads} requests queued on one connection`);
    this.queue.push(req);
    if (this.current === undefined) void this.drainQueue();
  }

  private async drainQueue(): Promise<void> {
    while (this.queue.length > 0 && !this.isClosed) {
      const req = this.queue.shift()!;
      this.current = req;
      this.track(1);
      const watchdog = this.watchStall(req);
      try {
        if (req.kind === 'load') await this.serveLoad(req);
        else await this.serveObject(req);
      } finally {
        clearInterval(watchdog);
        this.cancelled.delete(req.requestId);
        this.current = undefined;
        this.track(-1);
      }
    }
  }

  /** Checks that the request may start (not draining, not cancelled). */
  private admit(req: Pending): void {
    if (this.opts.draining()) throw tcError('TC_ERR_SHUTTING_DOWN', 'the daemon is shutting down');
    if (this.cancelled.has(req.requestId)) throw tcError('TC_ERR_ABORTED', `request ${req.requestId} cancelled`);
  }

  private async serveLoad(req: LoadPending): Promise<void> {
    const t0 = performance.now();
    let route = 'none';
    let source = 'none';
    try {
      this.admit(req);
      const end = await this.opts.handler.serve(req, this.frameSink(req));
      route = end.route;
      source = end.source;
      this.socket.write(End.encode(req.requestId, { ...end, bytes: req.end - req.start }));
      this.opts.onLoad({ route, source, outcome: 'ok', bytes: req.end - req.start, seconds: (performance.now() - t0) / 1000 });
    } catch (error) {
      const e = asCoded(error);
      const outcome = e.code === 'TC_ERR_ABORTED' ? 'cancelled' : 'error';
      this.opts.onLoad({ route, source, outcome, bytes: 0, seconds: (performance.now() - t0) / 1000 });
      if (!this.isClosed) this.socket.write(encodeError(req.requestId, e));
      if (e.category === 'Internal') this.opts.log.error({ err: e }, 'data-plane load failed');
    }
  }

  private async serveObject(req: PutPending | GetPending): Promise<void> {
    const t0 = performance.now();
    const report = (outcome: 'ok' | 'error' | 'cancelled', code: string | undefined, bytes: number): void => {
      const o = { outcome, code, bytes, seconds: (performance.now() - t0) / 1000 };
      if (req.kind === 'sread' || (req.kind === 'put' && req.op === 'append'))
        this.opts.onSession({ ...o, op: req.kind === 'sread' ? 'read' : 'append' });
      else this.opts.onObject({ ...o, op: req.kind });
    };
    try {
      this.admit(req);
      let done: { frame: Buffer; bytes: number };
      if (req.kind === 'put') done = { frame: await this.servePut(req), bytes: req.size };
      else if (req.kind === 'get') {
        const r = await this.serveGet(req);
        done = { frame: Done.encode(req.requestId, r), bytes: r.bytes };
      } else {
        const bytes = await this.serveSessionRead(req);
        done = { frame: SessionDone.encode(req.requestId, { bytes }), bytes };
      }
      this.socket.write(done.frame);
      report('ok', undefined, done.bytes);
    } catch (error) {
      const e = asCoded(error);
      report(e.code === 'TC_ERR_ABORTED' ? 'cancelled' : 'error', e.code, 0);
      if (!this.isClosed) this.socket.write(encodeError(req.requestId, e));
      if (e.category === 'Internal') this.opts.log.error({ err: e }, `data-plane ${req.kind} failed`);
    }
  }

  private objects(): NonNullable<ConnectionOptions['objects']> {
    const o = this.opts.objects;
    if (o === undefined) throw tcError('TC_ERR_UNAVAILABLE', 'this daemon serves no objects');
    return o;
  }

  /**
   * Reserves room, grants credit, waits until every byte landed (each DATA frame's bytes land through
   * {@link sink} and {@link onData}), then commits; answers the DONE frame. Any failure aborts the put (or
   * append); its later DATA is dropped.
   */
  private async servePut(req: PutPending): Promise<Buffer> {
    try {
      const session = await req.begin();
      req.session = session;
      if (this.isClosed) throw tcError('TC_ERR_ABORTED', 'connection closed');
      if (req.failed !== undefined) throw req.failed;
      req.active = req.expected < req.size;
      if (req.size > 0) this.grant(req, Math.min(req.size, PUT_WINDOW_BYTES) - req.granted);
      this.landEarly(req, session);
      await this.untilLanded(req);
      return await session.finish();
    } catch (error) {
      req.active = false;
      req.failed ??= asCoded(error);
      if (req.granted > 0) {
        this.failedPuts.push(req.requestId);
        if (this.failedPuts.length > FAILED_PUTS_KEPT) this.failedPuts.shift();
      }
      // No byte of a frame being read may reach the object's memory once it is freed.
      // (The eager buffer belongs to the connection: a frame still landing there harms nothing.)
      if (req.mode !== 'early' && !this.decoder.detachTarget()) this.socket.destroy();
      await req.writing.catch(() => undefined);
      req.session?.abort();
      throw error;
    }
  }

  /** Lands the eager DATA that arrived before the put's room was reserved (from the eager buffer). */
  private landEarly(req: PutPending, session: Receiver): void {
    const at = req.earlyLanded;
    const n = req.early - at;
    if (n <= 0) return;
    req.earlyLanded = req.early;
    const from = this.eagerBuffer!.subarray(at, at + n);
    const target = session.target(at, n);
    if (target !== undefined) {
      target.set(from);
      req.landed += n;
      this.grant(req, n);
      // (Called from onData too: the put may be waiting for this last byte.)
      this.poke();
      return;
    }
    // A file-backed put: the bytes are written from a copy (the eager buffer serves the next put).
    const copy = Buffer.from(from);
    req.writing = req.writing.then(
      () =>
        session.write(at, copy).then(
          () => {
            req.landed += n;
            this.grant(req, n);
            this.poke();
          },
          (error: unknown) => {
            req.failed ??= asCoded(error);
            req.active = false;
            this.poke();
          },
        ),
      () => undefined,
    );
  }

  /** Grants the client `bytes` more of a PUT. */
  private grant(req: PutPending, bytes: number): void {
    const n = Math.min(bytes, req.size - req.granted);
    if (n <= 0 || this.isClosed) return;
    req.granted += n;
    this.socket.write(encodeHeader(FrameType.CREDIT, req.requestId, 0, n));
  }

  /**
   * Waits until every byte of a PUT landed; bounded by its deadline, CANCEL and the connection. A session
   * append also ends when its client sends no DATA for `stallTimeoutMs`: it holds the session (its lease and
   * lock) while it waits, and a silent client must not keep every other writer out until its deadline.
   */
  private async untilLanded(req: PutPending): Promise<void> {
    let seen = req.landed;
    let since = Date.now();
    for (;;) {
      if (req.failed !== undefined) throw req.failed;
      if (this.isClosed || this.socket.destroyed) throw tcError('TC_ERR_ABORTED', 'connection closed');
      if (this.cancelled.has(req.requestId)) throw tcError('TC_ERR_ABORTED', `request ${req.requestId} cancelled`);
      if (req.landed === req.size) return;
      const left = req.deadline - Date.now();
      if (left <= 0) throw tcError('TC_ERR_TIMEOUT', `${req.label}: deadline passed after ${req.landed} of ${req.size} bytes`);
      if (req.landed !== seen) [seen, since] = [req.landed, Date.now()];
      const idle = Date.now() - since;
      if (req.op === 'append' && idle >= this.opts.stallTimeoutMs)
        throw tcError(
          'TC_ERR_TIMEOUT',
          `${req.label}: no DATA for ${idle} ms after ${req.landed} of ${req.size} bytes; the append was aborted`,
        );
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, Math.max(1, Math.min(left, 1000, this.opts.stallTimeoutMs - idle))).unref();
      });
    }
  }

  /** Where a DATA frame's payload lands: the current PUT's memory, scratch for a write, or a buffer to drop. */
  private sink(h: FrameHeader): Uint8Array {
    const p = this.current;
    if (p?.kind === 'put' && p.requestId === h.requestId && p.failed === undefined && p.session !== undefined) {
      if (!p.active) throw tcError('TC_ERR_PROTOCOL', `data plane: DATA for put ${h.requestId} after its last byte`);
      if (h.offset !== p.expected)
        throw tcError('TC_ERR_PROTOCOL', `data plane: put ${h.requestId}: DATA at offset ${h.offset}, expected ${p.expected} (in order)`);
      if (h.offset + h.length > p.granted)
        throw tcError(
          'TC_ERR_PROTOCOL',
          `data plane: put ${h.requestId}: DATA up to ${h.offset + h.length} beyond the credit of ${p.granted}`,
        );
      p.expected += h.length;
      if (p.expected === p.size) p.active = false;
      const target = p.session.target(h.offset, h.length);
      p.mode = target !== undefined ? 'direct' : 'write';
      return target ?? this.takeSpare(h.length);
    }
    if (p?.kind === 'put' && p.requestId === h.requestId && p.session === undefined && p.failed === undefined) {
      // Eager DATA of the put being reserved: held in the eager buffer until its room is there.
      if (!p.active || h.offset !== p.expected || h.offset + h.length > p.granted)
        throw tcError(
          'TC_ERR_PROTOCOL',
          `data plane: put ${h.requestId}: DATA at [${h.offset}, +${h.length}) before any credit beyond its eager ${p.granted} bytes (or out of order)`,
        );
      p.expected += h.length;
      if (p.expected === p.size) p.active = false;
      p.mode = 'early';
      this.eagerBuffer ??= Buffer.allocUnsafeSlow(PUT_EAGER_MAX_BYTES);
      return this.eagerBuffer.subarray(h.offset, h.offset + h.length);
    }
    const queued = this.queue.find((r) => r.requestId === h.requestId);
    if (queued?.kind === 'put')
      throw tcError(
        'TC_ERR_PROTOCOL',
        `data plane: DATA for put ${h.requestId} queued behind another request (eager DATA only for a connection's only request)`,
      );
    const failed = p?.kind === 'put' && p.requestId === h.requestId && p.failed !== undefined;
    if (!failed && !this.failedPuts.includes(h.requestId))
      throw tcError('TC_ERR_PROTOCOL', `data plane: DATA from the client for request ${h.requestId}, which is no put being received`);
    // A put that failed (its client had not heard yet when it sent this): read and drop.
    if (this.dropScratch === undefined || this.dropScratch.length < h.length)
      this.dropScratch = Buffer.allocUnsafe(Math.max(h.length, 64 << 10));
    return this.dropScratch.subarray(0, h.length);
  }

  /** A DATA frame's payload is complete (in the buffer {@link sink} gave). */
  private onData(h: FrameHeader, payload: Uint8Array, checksumOk: boolean): void {
    const p = this.current;
    if (p?.kind !== 'put' || p.requestId !== h.requestId || p.failed !== undefined) return;
    if (p.mode === 'early' && checksumOk) {
      p.early = h.offset + h.length;
      // The reservation came while this frame was being read: land it now.
      if (p.session !== undefined) this.landEarly(p, p.session);
      return;
    }
    const session = p.session;
    if (!checksumOk) {
      p.failed = tcError(
        'TC_ERR_CHECKSUM',
        `${p.label}: checksum mismatch at offset ${h.offset} (${h.length} bytes); the request was aborted`,
      );
      p.active = false;
      this.poke();
      return;
    }
    const land = (): void => {
      p.landed += h.length;
      this.grant(p, h.length);
      this.poke();
    };
    if (session === undefined) return;
    if (p.mode === 'direct') {
      land();
      return;
    }
    p.writing = p.writing
      .then(
        () =>
          session.write(h.offset, payload).then(land, (error: unknown) => {
            p.failed ??= asCoded(error);
            p.active = false;
            this.poke();
          }),
        () => undefined,
      )
      .finally(() => this.giveSpare(payload));
  }

  /** A buffer of exactly `bytes` (a view of a kept one when one is large enough). */
  private takeSpare(bytes: number): Buffer {
    const i = this.spare.findIndex((b) => b.length >= bytes);
    if (i >= 0) return this.spare.splice(i, 1)[0]!.subarray(0, bytes);
    const fresh = Buffer.allocUnsafeSlow(Math.max(bytes, this.opts.frameBytes));
    this.spareMemory.add(fresh.buffer);
    return fresh.subarray(0, bytes);
  }

  /** Keeps a buffer from {@link takeSpare} for reuse (a few per connection). */
  private giveSpare(view: Uint8Array): void {
    // Spares have an ArrayBuffer of their own (never Node's small-buffer pool): keep all of it.
    if (this.spare.length >= SPARE_BUFFERS_KEPT || !this.spareMemory.has(view.buffer)) return;
    this.spare.push(Buffer.from(view.buffer, 0, view.buffer.byteLength));
  }

  /** Sends an object: INFO, DATA within the credit, then (by the caller) DONE. The lease ends on every path. */
  private async serveGet(req: GetPending & { readonly kind: 'get' }): Promise<{ bytes: number; version: number }> {
    const lease = this.objects().openRead({ ...req.body, requestId: req.requestId, deadline: req.deadline });
    try {
      const { size, version } = lease;
      const expect = req.body.expectBytes;
      if (expect !== undefined && expect !== size) {
        throw size < expect
          ? tcError('TC_ERR_SHORT_READ', `object ${req.body.key} has ${size} bytes, fewer than the ${expect} expected`)
          : tcError('TC_ERR_DESTINATION_SIZE', `object ${req.body.key} has ${size} bytes, more than the ${expect} expected`);
      }
      this.socket.write(Info.encode(req.requestId, { size, version }));
      const sink = this.frameSink(req);
      const frame = this.opts.frameBytes;
      // Two frames in flight: the next one is read while the last one is still being written. A chunk counts
      // as being copied (a delete's free waits for it) until its frame is flushed; scratch buffers (for
      // chunks read from disk) alternate, one per frame in flight.
      const scratch: (Buffer | undefined)[] = [];
      const flushing: Promise<void>[] = [];
      try {
        for (let at = 0, i = 0; at < size; at += frame, i++) {
          const n = Math.min(frame, size - at);
          await sink.ready(at, n);
          if (flushing.length >= 2) await flushing.shift();
          const into = (scratch[i % 2] ??= this.takeSpare(Math.min(frame, size)));
          const bytes = await lease.chunk(at, n, into.subarray(0, n));
          flushing.push(sink.send(at, bytes).finally(() => lease.done()));
        }
      } finally {
        await Promise.all(flushing);
        for (const b of scratch) if (b !== undefined) this.giveSpare(b);
      }
      if (this.isClosed || this.socket.destroyed) throw tcError('TC_ERR_ABORTED', 'connection closed');
      return { bytes: size, version };
    } finally {
      lease.release();
    }
  }

  /**
   * Sends a session range: the cache validates and pins (swapping in when needed; errors before INFO), the
   * caller's buffer size must be the range's, then INFO, DATA frames cut from the cache's chunks (views of
   * hot copies, never copied here) within the credit, and (by the caller) DONE. The pin ends on every path.
   */
  private async serveSessionRead(req: GetPending & { readonly kind: 'sread' }): Promise<number> {
    const body = req.body;
    const handler = this.opts.sessions;
    if (handler === undefined) throw sessionsNotEnabled();
    const range = { tokenStart: body.tokenStart, tokenEnd: body.tokenEnd };
    const source = await handler.openRead(body.sessionId, range, serveOptions(body));
    try {
      const size = source.bytes;
      if (size !== body.expectBytes)
        throw tcError(
          'TC_ERR_DESTINATION_SIZE',
          `session ${body.sessionId}: tokens [${body.tokenStart}, ${body.tokenEnd}) are ${size} bytes; the destination holds ${body.expectBytes}`,
        );
      if (this.isClosed || this.socket.destroyed) throw tcError('TC_ERR_ABORTED', 'connection closed');
      this.socket.write(SessionInfo.encode(req.requestId, { size, hit: source.hit }));
      const sink = this.frameSink(req);
      let at = 0;
      // Socket writes complete in order: once the last one is flushed, every view may be let go.
      let flushed: Promise<void> = Promise.resolve();
      try {
        for await (const payload of framesOf(source.chunks(), this.opts.frameBytes)) {
          if (at + payload.length > size)
            throw tcError('TC_ERR_INTERNAL', `session ${body.sessionId}: the read yields more than ${size} bytes`);
          await sink.ready(at, payload.length);
          flushed = sink.send(at, payload);
          at += payload.length;
        }
      } finally {
        await flushed;
      }
      if (at !== size) throw tcError('TC_ERR_INTERNAL', `session ${body.sessionId}: the read yielded ${at} of ${size} bytes`);
      if (this.isClosed || this.socket.destroyed) throw tcError('TC_ERR_ABORTED', 'connection closed');
      return size;
    } finally {
      source.close();
    }
  }

  /**
   * Closes the connection when the peer takes no byte out of the socket for `stallTimeoutMs` while bytes
   * wait to be written: every wait of the request (credit, backpressure, a flush) then ends at once.
   */
  private watchStall(req: Pending): NodeJS.Timeout {
    // Bytes the kernel took: written minus still queued (a write counts once libuv completed it).
    const taken = (): number => this.socket.bytesWritten - this.socket.writableLength;
    let last = taken();
    let since = Date.now();
    const limit = this.opts.stallTimeoutMs;
    const timer = setInterval(
      () => {
        const now = taken();
        if (this.socket.writableLength === 0 || now !== last) {
          last = now;
          since = Date.now();
          return;
        }
        if (Date.now() - since < limit || this.isClosed) return;
        this.opts.log.warn(
          { requestId: req.requestId, remote: this.socket.remoteAddress, pendingBytes: this.socket.writableLength, ms: Date.now() - since },
          'data-plane peer stopped reading: connection closed',
        );
        this.socket.destroy();
        this.poke();
      },
      Math.max(10, Math.min(1000, limit / 4)),
    );
    timer.unref();
    return timer;
  }

  private frameSink(req: LoadPending | GetPending): FrameSink {
    return {
      ready: (at, bytes) => this.ready(req, at - (req.kind === 'load' ? req.start : 0), bytes),
      send: (at, payload, crc) => {
        this.socket.cork();
        this.socket.write(encodeHeader(FrameType.DATA, req.requestId, payload.length, at, crc ?? crc32c(payload)));
        // Called when written, or with an error when the socket is destroyed: either way the bytes are released.
        const flushed = new Promise<void>((resolve) => this.socket.write(payload, () => resolve()));
        this.socket.uncork();
        return flushed;
      },
      abandon: () => this.socket.destroy(),
    };
  }

  /**
   * Waits until `bytes` more may be sent after `sent` bytes of the request: credit granted, socket not backed
   * up; bounded by the deadline.
   */
  private async ready(req: LoadPending | GetPending, sent: number, bytes: number): Promise<void> {
    // A session read pins its session (no swap-out, its hot bytes not evictable) while it waits: a client that
    // grants no credit for `stallTimeoutMs` ends it, as a silent append is ended (nothing is queued on the
    // socket then, so the backpressure stall rule never fires).
    const since = Date.now();
    for (;;) {
      // Destroyed but not yet reported closed (the 'close' event comes a turn later): stop now all the same.
      if (this.isClosed || this.socket.destroyed) throw tcError('TC_ERR_ABORTED', 'connection closed');
      if (this.cancelled.has(req.requestId)) throw tcError('TC_ERR_ABORTED', `request ${req.requestId} cancelled`);
      const left = req.deadline - Date.now();
      if (left <= 0) {
        const total = req.kind === 'load' ? req.end - req.start : undefined;
        throw tcError(
          'TC_ERR_TIMEOUT',
          `request ${req.requestId}: deadline passed after ${sent}${total === undefined ? '' : ` of ${total}`} bytes`,
        );
      }
      const credited = req.granted - sent >= bytes;
      if (credited && this.socket.writableLength < 2 * this.opts.frameBytes) return;
      const idle = Date.now() - since;
      if (!credited && req.kind === 'sread' && idle >= this.opts.stallTimeoutMs)
        throw tcError(
          'TC_ERR_TIMEOUT',
          `request ${req.requestId}: no credit for ${idle} ms after ${sent} bytes; the session read was ended`,
        );
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, Math.max(1, Math.min(left, 1000, credited ? 1000 : this.opts.stallTimeoutMs - idle))).unref();
      });
    }
  }
}

/** A request's deadline from its timeout (a day when none). */
function deadlineOf(timeoutMs: number | undefined): number {
  return Date.now() + (timeoutMs ?? 24 * 3600_000);
}

function asCoded(error: unknown): TensorcastError {
  return error instanceof TensorcastError ? error : tcError('TC_ERR_INTERNAL', String(error), { cause: error });
}

// One data-plane connection on the server side. Before HELLO it accepts only a small frame and only for
// a short time (an unauthenticated peer can make the server hold a few KiB, never megabytes); after the
// token matched, LOADs are queued and served one at a time through the owner's LoadHandler, with credit,
// socket backpressure, CANCEL and the request's deadline enforced in FrameSink.ready().

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { TensorcastError, tcError } from '../core/errors.js';
import { tokenMatches } from '../core/secrets.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import { crc32c, encodeHeader, FrameType, MAX_CONTROL_BYTES, PROTOCOL_VERSION, type FrameHeader } from '../protocol/frames.js';
import { encodeError, End, Hello, Load, Welcome } from '../protocol/messages.js';
import type { ConnectionOptions, FrameSink, LoadRequest } from './data-server.js';

/** A connection's request state. */
interface Pending extends LoadRequest {
  granted: number;
}

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

  constructor(
    private readonly socket: Socket,
    private readonly opts: ConnectionOptions,
    private readonly track: (delta: 1 | -1) => void,
  ) {
    this.decoder = new FrameDecoder({ onFrame: (h, p) => this.onFrame(h, p), maxDataBytes: 0, maxControlBytes: opts.preAuthFrameBytes });
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

  private onFrame(h: FrameHeader, payload: Uint8Array): void {
    if (!this.authenticated) {
      if (h.type !== FrameType.HELLO) throw tcError('TC_ERR_PROTOCOL', 'data plane: expected HELLO first');
      const hello = Hello.decode(payload);
      clearTimeout(this.helloTimer);
      if (hello.version !== PROTOCOL_VERSION)
        throw tcError('TC_ERR_PROTOCOL', `data plane: client speaks version ${hello.version}, this daemon speaks ${PROTOCOL_VERSION}`);
      if (!tokenMatches(hello.token, this.opts.token)) throw tcError('TC_ERR_AUTH', 'data plane: wrong or missing token');
      this.authenticated = true;
      this.decoder.setLimits({ maxControlBytes: MAX_CONTROL_BYTES });
      this.socket.write(Welcome.encode(0, { daemonId: this.opts.daemonId, version: PROTOCOL_VERSION, frameBytes: this.opts.frameBytes }));
      return;
    }
    switch (h.type) {
      case FrameType.LOAD: {
        if (this.queue.length >= this.opts.maxQueuedLoads)
          throw tcError('TC_ERR_PROTOCOL', `data plane: more than ${this.opts.maxQueuedLoads} LOADs queued on one connection`);
        const body = Load.decode(payload);
        if (body.end < body.start) throw tcError('TC_ERR_PROTOCOL', `data plane: LOAD range [${body.start}, ${body.end}) is reversed`);
        const deadline = Date.now() + (body.timeoutMs ?? 24 * 3600_000);
        this.queue.push({ ...body, requestId: h.requestId, deadline, granted: body.credit });
        if (this.current === undefined) void this.drainQueue();
        return;
      }
      case FrameType.CREDIT: {
        const target = this.current?.requestId === h.requestId ? this.current : this.queue.find((r) => r.requestId === h.requestId);
        if (target !== undefined) target.granted += h.offset;
        this.poke();
        return;
      }
      case FrameType.CANCEL:
        if (this.current?.requestId === h.requestId || this.queue.some((r) => r.requestId === h.requestId)) this.cancelled.add(h.requestId);
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
      const watchdog = this.watchStall(req);
      let route = 'none';
      let source = 'none';
      try {
        if (this.opts.draining()) throw tcError('TC_ERR_SHUTTING_DOWN', 'the daemon is shutting down');
        if (this.cancelled.has(req.requestId)) throw tcError('TC_ERR_ABORTED', `request ${req.requestId} cancelled`);
        const end = await this.opts.handler.serve(req, this.sink(req));
        route = end.route;
        source = end.source;
        this.socket.write(End.encode(req.requestId, { ...end, bytes: req.end - req.start }));
        this.opts.onLoad({ route, source, outcome: 'ok', bytes: req.end - req.start, seconds: (performance.now() - t0) / 1000 });
      } catch (error) {
        const e = error instanceof TensorcastError ? error : tcError('TC_ERR_INTERNAL', String(error), { cause: error });
        const outcome = e.code === 'TC_ERR_ABORTED' ? 'cancelled' : 'error';
        this.opts.onLoad({ route, source, outcome, bytes: 0, seconds: (performance.now() - t0) / 1000 });
        if (!this.isClosed) this.socket.write(encodeError(req.requestId, e));
        if (e.category === 'Internal') this.opts.log.error({ err: e }, 'data-plane load failed');
      } finally {
        clearInterval(watchdog);
        this.cancelled.delete(req.requestId);
        this.current = undefined;
        this.track(-1);
      }
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

  private sink(req: Pending): FrameSink {
    return {
      ready: (at, bytes) => this.ready(req, at, bytes),
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

  /** Waits until `bytes` more may be sent: credit granted, socket not backed up; bounded by the deadline. */
  private async ready(req: Pending, at: number, bytes: number): Promise<void> {
    for (;;) {
      // Destroyed but not yet reported closed (the 'close' event comes a turn later): stop now all the same.
      if (this.isClosed || this.socket.destroyed) throw tcError('TC_ERR_ABORTED', 'connection closed');
      if (this.cancelled.has(req.requestId)) throw tcError('TC_ERR_ABORTED', `request ${req.requestId} cancelled`);
      const left = req.deadline - Date.now();
      if (left <= 0)
        throw tcError(
          'TC_ERR_TIMEOUT',
          `request ${req.requestId}: deadline passed after ${at - req.start} of ${req.end - req.start} bytes`,
        );
      if (req.granted - (at - req.start) >= bytes && this.socket.writableLength < 2 * this.opts.frameBytes) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, Math.min(left, 1000)).unref();
      });
    }
  }
}

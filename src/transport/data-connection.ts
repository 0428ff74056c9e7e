// One data-plane connection from a receiver (the SDK, or a daemon pulling from another daemon): HELLO with
// the token, then LOAD requests (and object PUT/GET requests: object-requests.ts), one at a time. The
// socket reads through `onread` straight into the caller's buffer; each DATA frame's CRC32C is checked
// before its bytes count as delivered, and credit is granted back as frames land. A request given up on (its signal aborted) is cancelled with CANCEL and its later
// frames are dropped, so no byte reaches the caller's buffer after the load was rejected.

import { connect as netConnect, type Socket } from 'node:net';
import { tcError } from '../core/errors.js';
import type { ViewSpec } from '../layout/view.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import { encodeHeader, FrameType, PROTOCOL_VERSION, type FrameHeader } from '../protocol/frames.js';
import { decodeError, End, Hello, Load, Welcome } from '../protocol/messages.js';
import type { EndBody, LoadBody } from '../protocol/messages.js';
import type { RouteKind } from '../protocol/route-kinds.js';
import {
  GetExchange,
  PutExchange,
  type ExchangeHost,
  type ObjectExchange,
  type ObjectGetEnd,
  type ObjectGetRequest,
  type ObjectPutEnd,
  type ObjectPutRequest,
} from './object-requests.js';
import {
  SessionAppendExchange,
  SessionReadExchange,
  type SessionAppendEnd,
  type SessionAppendWire,
  type SessionReadEnd,
  type SessionReadWire,
} from './session-requests.js';

export type { ObjectGetEnd, ObjectGetRequest, ObjectPutEnd, ObjectPutRequest };
export type { SessionAppendEnd, SessionAppendWire, SessionReadEnd, SessionReadWire };

/** Credit granted per request: how many bytes the server may send ahead of what has landed. */
const WINDOW_BYTES = 64 << 20;
/** How long a cancelled request may take to be acknowledged before the connection is closed instead. */
const CANCEL_GRACE_MS = 5000;

/** What a LOAD asks for. */
export interface RangeRequest {
  readonly artifactId: string;
  readonly view: ViewSpec | undefined;
  readonly viewId: string | undefined;
  /** Output byte range `[start, end)`; `dest` receives exactly these bytes. */
  readonly start: number;
  readonly end: number;
  readonly timeoutMs: number;
  /** A consumer's route choice (default auto). */
  readonly route?: LoadBody['route'];
  /** Set by a daemon fetching from another daemon. */
  readonly peer?: LoadBody['peer'];
}

/** What the server reported at the end of a request. */
export interface RangeEnd extends Pick<EndBody, 'fallback' | 'sourceDaemon' | 'wireBytes' | 'readBytes'> {
  readonly bytes: number;
  readonly route: RouteKind;
  readonly source: string;
}

interface Pending {
  readonly id: number;
  readonly req: RangeRequest;
  readonly dest: Uint8Array;
  received: number;
  /** Set once the caller gave up: later frames of this request are dropped. */
  cancelled: boolean;
  readonly resolve: (end: RangeEnd) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * A data-plane connection.
 *
 * @example const c = await DataConnection.open('127.0.0.1:7071', token); await c.load(req, dest); c.close();
 */
export class DataConnection {
  private pending: Pending | undefined;
  /** The object request in flight (PUT or GET), if any. */
  private exchange: ObjectExchange | undefined;
  /** The daemon's largest DATA frame (WELCOME). */
  private frameBytes = 4 << 20;
  private nextId = 1;
  private broken: Error | undefined;
  private welcomed: ((ok: Error | undefined) => void) | undefined;
  private readonly decoder: FrameDecoder;
  private socket!: Socket;

  private constructor(private readonly address: string) {
    this.decoder = new FrameDecoder({ sink: (h) => this.sink(h), onFrame: (h, p, ok) => this.onFrame(h, p, ok) });
  }

  /** Connects and authenticates. @throws TC_ERR_UNAVAILABLE, TC_ERR_AUTH, TC_ERR_TIMEOUT */
  static async open(address: string, token: string, timeoutMs = 10_000): Promise<DataConnection> {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
    if (!m) throw tcError('TC_ERR_INVALID_ARGUMENT', `bad data-plane address '${address}'`);
    const c = new DataConnection(address);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        c.breakWith(tcError('TC_ERR_TIMEOUT', `data plane ${address}: no WELCOME within ${timeoutMs} ms`));
      }, timeoutMs);
      c.welcomed = (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      c.socket = netConnect({
        host: m[1]!,
        port: Number(m[2]),
        noDelay: true,
        onread: {
          buffer: () => c.decoder.readBuffer(),
          callback: (n: number) => {
            try {
              c.decoder.commit(n);
            } catch (error) {
              c.breakWith(error as Error);
            }
            return true;
          },
        },
      });
      c.socket.on('connect', () => c.socket.write(Hello.encode(0, { version: PROTOCOL_VERSION, token, client: 'tensorcast-node/0.1.0' })));
      c.socket.on('error', (e: NodeJS.ErrnoException) =>
        c.breakWith(tcError('TC_ERR_UNAVAILABLE', `data plane ${address}: ${e.code ?? e.message}`, { cause: e })),
      );
      c.socket.on('close', () => c.breakWith(tcError('TC_ERR_UNAVAILABLE', `data plane ${address}: connection closed by the peer`)));
    });
    return c;
  }

  /** True while the connection can take a request (not broken, no request in flight or being cancelled). */
  get usable(): boolean {
    return this.broken === undefined && this.pending === undefined && this.exchange === undefined;
  }

  private breakWith(error: Error): void {
    if (this.broken !== undefined) return;
    this.broken = error;
    this.socket?.destroy();
    this.welcomed?.(error);
    this.welcomed = undefined;
    const p = this.pending;
    this.pending = undefined;
    if (p !== undefined) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    const x = this.exchange;
    this.exchange = undefined;
    x?.fail(error);
  }

  private sink(h: FrameHeader): Uint8Array | undefined {
    if (this.exchange !== undefined && h.requestId === this.exchange.id) return this.exchange.sink(h);
    const p = this.pending;
    if (p === undefined || h.requestId !== p.id) return undefined;
    // A cancelled request's frames still arrive until the server sees CANCEL: read them into a throwaway.
    if (p.cancelled) return Buffer.allocUnsafe(h.length);
    // In order, no gap, no overlap (docs/protocol.md): counting bytes alone would let a repeated frame pass
    // for a full range while part of `dest` was never written. Anything else is a protocol error.
    const from = h.offset - p.req.start;
    if (from !== p.received || from + h.length > p.dest.length) return undefined;
    return p.dest.subarray(from, from + h.length);
  }

  private onFrame(h: FrameHeader, payload: Uint8Array, checksumOk: boolean): void {
    if (this.welcomed !== undefined) {
      if (h.type === FrameType.WELCOME) {
        this.frameBytes = Welcome.decode(payload).frameBytes;
        this.welcomed(undefined);
        this.welcomed = undefined;
        return;
      }
      if (h.type === FrameType.ERROR) throw decodeError(payload, `data plane ${this.address}`);
      throw tcError('TC_ERR_PROTOCOL', `data plane: expected WELCOME, got frame type ${h.type}`);
    }
    const p = this.pending;
    if (h.type === FrameType.ERROR && h.requestId === 0) throw decodeError(payload, `data plane ${this.address}`);
    if (this.exchange !== undefined && h.requestId === this.exchange.id) {
      this.exchange.onFrame(h, payload, checksumOk);
      return;
    }
    // Credit the daemon sent for an object put that already ended (an ERROR crossed it): nothing to do.
    if (h.type === FrameType.CREDIT && h.requestId < this.nextId && p?.id !== h.requestId) return;
    if (p === undefined || h.requestId !== p.id) throw tcError('TC_ERR_PROTOCOL', `data plane: frame for unknown request ${h.requestId}`);
    switch (h.type) {
      case FrameType.DATA:
        if (p.cancelled) return;
        if (!checksumOk)
          throw tcError('TC_ERR_CHECKSUM', `data plane: checksum mismatch at offset ${h.offset} (${h.length} bytes); the load failed`);
        p.received += h.length;
        this.socket.write(encodeHeader(FrameType.CREDIT, p.id, 0, h.length));
        return;
      case FrameType.END: {
        const end = End.decode(payload);
        this.pending = undefined;
        clearTimeout(p.timer);
        if (p.cancelled) return;
        if (p.received !== p.dest.length) {
          throw tcError('TC_ERR_PROTOCOL', `data plane: END after ${p.received} of ${p.dest.length} bytes`);
        }
        p.resolve({
          bytes: p.received,
          route: end.route,
          source: end.source,
          ...(end.fallback == null ? {} : { fallback: end.fallback }),
          ...(end.sourceDaemon == null ? {} : { sourceDaemon: end.sourceDaemon }),
          ...(end.wireBytes === undefined ? {} : { wireBytes: end.wireBytes }),
          ...(end.readBytes === undefined ? {} : { readBytes: end.readBytes }),
        });
        return;
      }
      case FrameType.ERROR: {
        const error = decodeError(payload, `data plane ${this.address}`);
        this.pending = undefined;
        clearTimeout(p.timer);
        if (!p.cancelled) p.reject(error);
        return;
      }
      case FrameType.HELLO:
      case FrameType.WELCOME:
      case FrameType.LOAD:
      case FrameType.CREDIT:
      case FrameType.CANCEL:
      case FrameType.PUT:
      case FrameType.GET:
      case FrameType.INFO:
      case FrameType.DONE:
      case FrameType.SAPPEND:
      case FrameType.SREAD:
        throw tcError('TC_ERR_PROTOCOL', `data plane: unexpected frame type ${h.type} from the peer`);
    }
  }

  /**
   * Loads `[req.start, req.end)` of a view into `dest` (exactly that long). When `signal` aborts, the request
   * is cancelled: the promise rejects with the signal's reason only once no further byte can reach `dest`.
   *
   * @throws TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE (connection lost, retryable), TC_ERR_CHECKSUM, the server's code
   */
  load(req: RangeRequest, dest: Uint8Array, signal?: AbortSignal): Promise<RangeEnd> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.pending || this.exchange) return Promise.reject(tcError('TC_ERR_INTERNAL', 'DataConnection: one request at a time'));
    if (dest.length !== req.end - req.start)
      return Promise.reject(tcError('TC_ERR_DESTINATION_SIZE', 'destination does not match the range'));
    if (signal?.aborted === true) return Promise.reject(abortReason(signal));
    return new Promise<RangeEnd>((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.breakWith(tcError('TC_ERR_TIMEOUT', `load of ${req.end - req.start} bytes did not finish within ${req.timeoutMs} ms`));
      }, req.timeoutMs);
      const onAbort = (): void => this.cancel(abortReason(signal!));
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      this.pending = {
        id,
        req,
        dest,
        received: 0,
        cancelled: false,
        resolve: (end) => (done(), resolve(end)),
        reject: (error) => (done(), reject(error)),
        timer,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.socket.write(
        Load.encode(id, {
          artifactId: req.artifactId,
          view: (req.view as Record<string, unknown> | undefined) ?? null,
          viewId: req.viewId ?? null,
          start: req.start,
          end: req.end,
          credit: WINDOW_BYTES,
          timeoutMs: req.timeoutMs,
          ...(req.route === undefined ? {} : { route: req.route }),
          ...(req.peer === undefined ? {} : { peer: req.peer }),
        }),
      );
    });
  }

  /**
   * Stores `source` as the object `req.key` (one PUT): DATA frames go straight from `source` (no copy; do not
   * change it until the promise settles), within the daemon's credit and the socket's pace. Resolves only
   * on the daemon's DONE. When `signal` aborts, CANCEL is sent and the connection closed (the daemon drops
   * the put; one whose last byte was already sent may still commit).
   *
   * @throws TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE, TC_ERR_PROTOCOL, the daemon's code (TC_ERR_AUTH,
   *   TC_ERR_BACKPRESSURE, TC_ERR_BUDGET, TC_ERR_CONFLICT, TC_ERR_CHECKSUM, ...)
   * @example const { version } = await conn.put({ key: 'ns/a', timeoutMs: 60_000 }, bytes);
   */
  put(req: ObjectPutRequest, source: Uint8Array, signal?: AbortSignal): Promise<ObjectPutEnd> {
    const refused = this.refuse(signal);
    if (refused) return refused;
    const x = new PutExchange(this.host(), this.nextId++, req, source, signal);
    this.exchange = x;
    x.start();
    return x.promise;
  }

  /**
   * Reads the object `req.key`: into `dest` when given (it must be exactly the object's size: a larger one
   * fails with TC_ERR_SHORT_READ, a smaller one with TC_ERR_DESTINATION_SIZE), else into a new buffer.
   * Resolves only once exactly the object's bytes landed and were checked; on any failure the buffer's
   * contents are unspecified and nothing more lands in it.
   *
   * @throws TC_ERR_NOT_FOUND, TC_ERR_OBJECT_LOST, TC_ERR_AUTH, TC_ERR_SHORT_READ, TC_ERR_DESTINATION_SIZE,
   *   TC_ERR_CHECKSUM, TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE
   * @example const { data, version } = await conn.get({ key: 'ns/a', timeoutMs: 60_000 }, undefined);
   */
  get(req: ObjectGetRequest, dest: Uint8Array | undefined, signal?: AbortSignal): Promise<ObjectGetEnd> {
    const refused = this.refuse(signal);
    if (refused) return refused;
    const x = new GetExchange(this.host(), this.nextId++, req, dest, signal);
    this.exchange = x;
    x.start();
    return x.promise;
  }

  /**
   * Appends `source` (whole tokens) to a session (one SAPPEND): DATA frames go straight from `source` (do not
   * change it until the promise settles). Resolves only on the daemon's DONE: the bytes are then recorded.
   *
   * @throws the daemon's code (TC_ERR_INVALID_ARGUMENT gap/overlap/partial_token, TC_ERR_CONFLICT,
   *   TC_ERR_INCOMPATIBLE, TC_ERR_NOT_FOUND), TC_ERR_CHECKSUM, TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE
   * @example const { tokens } = await conn.sessionAppend({ sessionId: 's', tokenOffset: 0, timeoutMs: 60_000 }, kv);
   */
  sessionAppend(req: SessionAppendWire, source: Uint8Array, signal?: AbortSignal): Promise<SessionAppendEnd> {
    const refused = this.refuse(signal);
    if (refused) return refused;
    const x = new SessionAppendExchange(this.host(), this.nextId++, req, source, signal);
    this.exchange = x;
    x.start();
    return x.promise;
  }

  /**
   * Reads a session's token range into `dest` (exactly the range's bytes, else TC_ERR_DESTINATION_SIZE before
   * any byte moves). Resolves only once every byte landed and was checked.
   *
   * @throws TC_ERR_SOURCE_RANGE, TC_ERR_DESTINATION_SIZE, TC_ERR_INCOMPATIBLE, TC_ERR_NOT_FOUND, TC_ERR_CHECKSUM,
   *   TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE
   * @example const { hit } = await conn.sessionRead({ sessionId: 's', tokenStart: 0, tokenEnd: 16, timeoutMs: 60_000 }, buf);
   */
  sessionRead(req: SessionReadWire, dest: Uint8Array, signal?: AbortSignal): Promise<SessionReadEnd> {
    const refused = this.refuse(signal);
    if (refused) return refused;
    const x = new SessionReadExchange(this.host(), this.nextId++, req, dest, signal);
    this.exchange = x;
    x.start();
    return x.promise;
  }

  /** Why a new request cannot start now, as a rejected promise; undefined when it can. */
  private refuse(signal: AbortSignal | undefined): Promise<never> | undefined {
    if (this.broken) return Promise.reject(this.broken);
    if (this.pending || this.exchange) return Promise.reject(tcError('TC_ERR_INTERNAL', 'DataConnection: one request at a time'));
    if (signal?.aborted === true) return Promise.reject(abortReason(signal));
    return undefined;
  }

  /** What an object exchange sees of this connection. */
  private host(): ExchangeHost {
    return {
      socket: this.socket,
      frameBytes: this.frameBytes,
      where: this.address,
      ended: (x) => {
        if (this.exchange === x) this.exchange = undefined;
      },
      breakWith: (error) => this.breakWith(error),
    };
  }

  /** Gives up on the request in flight: diverts its bytes away from the caller's buffer, then rejects it. */
  private cancel(reason: Error): void {
    const p = this.pending;
    if (p === undefined || p.cancelled || this.broken !== undefined) return;
    p.cancelled = true;
    this.socket.write(encodeHeader(FrameType.CANCEL, p.id, 0, 0));
    if (!this.decoder.detachTarget()) {
      // A socket read into the caller's buffer is already registered: only closing the socket stops it.
      this.breakWith(reason);
      return;
    }
    clearTimeout(p.timer);
    // The connection is reusable once the server acknowledges (END or ERROR); if it does not, close it.
    const grace = setTimeout(() => {
      if (this.pending === p) this.breakWith(tcError('TC_ERR_ABORTED', 'cancelled request was not acknowledged'));
    }, CANCEL_GRACE_MS);
    grace.unref();
    p.reject(reason);
  }

  /** Closes the connection. */
  close(): void {
    // A request still in flight fails with TC_ERR_ABORTED (it would otherwise never settle).
    this.breakWith(tcError('TC_ERR_ABORTED', 'connection closed by the client'));
    this.socket?.destroy();
  }
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : tcError('TC_ERR_ABORTED', 'load cancelled');
}

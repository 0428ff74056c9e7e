// Object PUT and GET over one data-plane connection (docs/protocol.md, "Objects"), the client side. A PUT
// sends the caller's bytes as DATA frames straight from its buffer (a header, then a subarray: no copy),
// never beyond the credit the daemon granted and never faster than the socket drains; it is done only when
// the daemon's DONE came. A GET lands DATA frames straight in the destination through the decoder's sink,
// grants credit back as frames land, and resolves only when exactly the object's size landed.

import { constants as bufferConstants } from 'node:buffer';
import type { Socket } from 'node:net';
import { tcError } from '../core/errors.js';
import { encodeDataHeader, encodeHeader, FrameType, MAX_DATA_BYTES, type FrameHeader } from '../protocol/frames.js';
import { decodeError, Done, Get, Info, Put, PUT_EAGER_MAX_BYTES, type PutBody } from '../protocol/messages.js';

/** Credit a GET (or SREAD) grants: how many bytes the daemon may send ahead of what has landed. */
export const GET_WINDOW_BYTES = 64 << 20;
/** Largest DATA payload a PUT sends (the protocol's bound; the daemon's WELCOME frameBytes may be lower). */
const PUT_FRAME_BYTES = 4 << 20;
/** A PUT stops queueing frames while this much is buffered in the socket (then waits for 'drain'). */
const PUT_QUEUE_BYTES = 8 << 20;

/** What an object PUT asks for (the PUT frame without `size`: that is the source's length). */
export interface ObjectPutRequest extends Omit<PutBody, 'size' | 'timeoutMs' | 'eager'> {
  /** Deadline of the whole put, in ms (also sent to the daemon). */
  readonly timeoutMs: number;
}

/** What an object GET asks for. */
export interface ObjectGetRequest {
  readonly key: string;
  readonly storeToken?: string | undefined;
  readonly timeoutMs: number;
}

/** A finished PUT: bytes stored and the version the object has (or will have once its txn commits). */
export interface ObjectPutEnd {
  readonly bytes: number;
  readonly version: number;
}

/** A finished GET: the object's bytes (the caller's buffer when one was given) and version. */
export interface ObjectGetEnd extends ObjectPutEnd {
  readonly data: Uint8Array;
}

/** What an exchange needs of its connection. */
export interface ExchangeHost {
  readonly socket: Socket;
  /** The daemon's largest DATA frame (WELCOME frameBytes). */
  readonly frameBytes: number;
  /** Names the peer in errors. */
  readonly where: string;
  /** The exchange is over and the connection can take the next request. */
  ended(exchange: ObjectExchange): void;
  /** Closes the connection; the exchange in flight fails with `error`. */
  breakWith(error: Error): void;
}

/** One object request in flight on a connection. */
export interface ObjectExchange {
  readonly id: number;
  /** Where a DATA payload of this request lands, or undefined (a protocol error). */
  sink(h: FrameHeader): Uint8Array | undefined;
  /** A frame of this request. @throws TC_ERR_PROTOCOL, TC_ERR_CHECKSUM: the connection is then closed */
  onFrame(h: FrameHeader, payload: Uint8Array, checksumOk: boolean): void;
  /** The connection broke (or the deadline passed): reject unless already settled. */
  fail(error: Error): void;
}

/** Shared bookkeeping: one promise settled once, a deadline, an abort listener. */
export abstract class Exchange<T> implements ObjectExchange {
  readonly promise: Promise<T>;
  protected settled = false;
  private resolveFn!: (value: T) => void;
  private rejectFn!: (error: Error) => void;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    protected readonly host: ExchangeHost,
    readonly id: number,
    timeoutMs: number,
    what: string,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    this.timer = setTimeout(() => host.breakWith(tcError('TC_ERR_TIMEOUT', `${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
    if (signal !== undefined) {
      // Giving up mid-request: CANCEL, then close the connection, so no byte of this request moves (or lands
      // in the caller's buffer) afterwards and the daemon drops what it holds of it.
      this.onAbort = (): void => {
        if (this.settled) return;
        host.socket.write(encodeHeader(FrameType.CANCEL, id, 0, 0));
        host.breakWith(abortReason(signal));
      };
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  abstract sink(h: FrameHeader): Uint8Array | undefined;
  abstract onFrame(h: FrameHeader, payload: Uint8Array, checksumOk: boolean): void;

  fail(error: Error): void {
    this.reject(error);
  }

  /** Settles with a value and hands the connection back. */
  protected resolve(value: T): void {
    if (!this.cleanup()) return;
    this.host.ended(this);
    this.resolveFn(value);
  }

  /** Settles with an error the daemon reported for this request (the connection stays usable). */
  protected rejectEnded(error: Error): void {
    if (!this.cleanup()) return;
    this.host.ended(this);
    this.rejectFn(error);
  }

  private reject(error: Error): void {
    if (this.cleanup()) this.rejectFn(error);
  }

  private cleanup(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    this.settleHook();
    return true;
  }

  /** Called once when the exchange settles (either way). */
  protected settleHook(): void {}

  protected unexpected(h: FrameHeader): Error {
    return tcError('TC_ERR_PROTOCOL', `data plane: unexpected frame type ${h.type} for request ${this.id}`);
  }
}

/**
 * A request that sends the caller's bytes within the daemon's CREDIT (PUT, SAPPEND): the subclass gives the
 * request frame and reads the DONE. Call {@link start} once; `promise` settles with the DONE or ERROR.
 */
export abstract class SendExchange<E extends { readonly bytes: number }> extends Exchange<E> {
  private granted = 0;
  private sent = 0;
  private wake: (() => void) | undefined;
  private readonly onDrain = (): void => this.poke();

  constructor(
    host: ExchangeHost,
    id: number,
    timeoutMs: number,
    what: string,
    private readonly source: Uint8Array,
    signal: AbortSignal | undefined,
  ) {
    super(host, id, timeoutMs, what, signal);
  }

  /** The request frame for `size` bytes of which the first `eager` follow at once. */
  protected abstract requestFrame(size: number, eager: number): Buffer;
  /** The request's end from its DONE payload. @throws TC_ERR_PROTOCOL */
  protected abstract doneOf(payload: Uint8Array): E;

  /**
   * Sends the request and starts the DATA pump: the first min(size, 1 MiB) bytes go at once (`eager`, counted
   * as granted: a small request takes one round trip), the rest within the daemon's CREDIT.
   */
  start(): void {
    const size = this.source.length;
    const eager = Math.min(size, PUT_EAGER_MAX_BYTES);
    this.granted = eager;
    this.host.socket.write(this.requestFrame(size, eager));
    this.host.socket.on('drain', this.onDrain);
    this.pump().catch((error: unknown) => this.host.breakWith(error as Error));
  }

  sink(): Uint8Array | undefined {
    return undefined;
  }

  onFrame(h: FrameHeader, payload: Uint8Array): void {
    switch (h.type) {
      case FrameType.CREDIT:
        this.granted += h.offset;
        this.poke();
        return;
      case FrameType.DONE: {
        const done = this.doneOf(payload);
        if (this.sent !== this.source.length || done.bytes !== this.source.length)
          throw tcError(
            'TC_ERR_PROTOCOL',
            `data plane: DONE for a request of ${this.source.length} bytes after ${this.sent} were sent (daemon says ${done.bytes})`,
          );
        this.resolve(done);
        return;
      }
      case FrameType.ERROR:
        this.rejectEnded(decodeError(payload, `data plane ${this.host.where}`));
        return;
      case FrameType.HELLO:
      case FrameType.WELCOME:
      case FrameType.LOAD:
      case FrameType.DATA:
      case FrameType.END:
      case FrameType.CANCEL:
      case FrameType.PUT:
      case FrameType.GET:
      case FrameType.INFO:
      case FrameType.SAPPEND:
      case FrameType.SREAD:
        throw this.unexpected(h);
    }
  }

  protected override settleHook(): void {
    this.host.socket.off('drain', this.onDrain);
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private waitForWake(): Promise<void> {
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  /** Sends DATA frames from the caller's buffer as credit and the socket allow, until all are sent or the put settles. */
  private async pump(): Promise<void> {
    const socket = this.host.socket;
    const frame = Math.max(1, Math.min(this.host.frameBytes, PUT_FRAME_BYTES, MAX_DATA_BYTES));
    const size = this.source.length;
    while (!this.settled && this.sent < size) {
      const room = Math.min(this.granted, size) - this.sent;
      if (room <= 0 || (socket.writableNeedDrain && socket.writableLength >= PUT_QUEUE_BYTES)) {
        await this.waitForWake();
        continue;
      }
      const n = Math.min(frame, room);
      const payload = this.source.subarray(this.sent, this.sent + n);
      socket.cork();
      socket.write(encodeDataHeader(this.id, this.sent, payload));
      socket.write(payload);
      socket.uncork();
      this.sent += n;
    }
  }
}

/**
 * An object PUT.
 *
 * @example const x = new PutExchange(host, id, req, bytes); x.start(); const { version } = await x.promise;
 */
export class PutExchange extends SendExchange<ObjectPutEnd> {
  constructor(
    host: ExchangeHost,
    id: number,
    private readonly req: ObjectPutRequest,
    source: Uint8Array,
    signal?: AbortSignal,
  ) {
    super(host, id, req.timeoutMs, `put of ${source.length} bytes to '${req.key}'`, source, signal);
  }

  protected requestFrame(size: number, eager: number): Buffer {
    const { timeoutMs, ...rest } = this.req;
    return Put.encode(this.id, { ...rest, size, timeoutMs, ...(eager > 0 ? { eager } : {}) });
  }

  protected doneOf(payload: Uint8Array): ObjectPutEnd {
    const done = Done.decode(payload);
    return { bytes: done.bytes, version: done.version };
  }
}

/**
 * An object GET into `dest` (exactly the object's size) or into a buffer allocated on INFO.
 *
 * @example const x = new GetExchange(host, id, req, undefined); x.start(); const { data } = await x.promise;
 */
export class GetExchange extends Exchange<ObjectGetEnd> {
  private info: { size: number; version: number } | undefined;
  private data: Uint8Array | undefined;
  private received = 0;

  constructor(
    host: ExchangeHost,
    id: number,
    private readonly req: ObjectGetRequest,
    private readonly dest: Uint8Array | undefined,
    signal?: AbortSignal,
  ) {
    super(host, id, req.timeoutMs, `get of '${req.key}'`, signal);
  }

  /** Sends the GET. */
  start(): void {
    this.host.socket.write(
      Get.encode(this.id, {
        key: this.req.key,
        credit: GET_WINDOW_BYTES,
        timeoutMs: this.req.timeoutMs,
        ...(this.dest === undefined ? {} : { expectBytes: this.dest.length }),
        ...(this.req.storeToken === undefined ? {} : { storeToken: this.req.storeToken }),
      }),
    );
  }

  sink(h: FrameHeader): Uint8Array | undefined {
    // In order, within the object: anything else is a protocol error (the decoder closes the connection).
    if (this.settled || this.data === undefined || h.offset !== this.received || h.offset + h.length > this.data.length) return undefined;
    return this.data.subarray(h.offset, h.offset + h.length);
  }

  onFrame(h: FrameHeader, payload: Uint8Array, checksumOk: boolean): void {
    switch (h.type) {
      case FrameType.INFO:
        this.onInfo(Info.decode(payload));
        return;
      case FrameType.DATA:
        if (!checksumOk)
          throw tcError('TC_ERR_CHECKSUM', `data plane: checksum mismatch at offset ${h.offset} (${h.length} bytes) of '${this.req.key}'`);
        this.received += h.length;
        this.host.socket.write(encodeHeader(FrameType.CREDIT, this.id, 0, h.length));
        return;
      case FrameType.DONE: {
        const done = Done.decode(payload);
        const info = this.info;
        if (info === undefined) throw tcError('TC_ERR_PROTOCOL', `data plane: DONE before INFO for '${this.req.key}'`);
        if (this.received !== info.size || done.bytes !== info.size) {
          this.rejectEnded(
            tcError(
              'TC_ERR_SHORT_READ',
              `get of '${this.req.key}': ${this.received} of ${info.size} bytes landed (the daemon reported ${done.bytes}); nothing returned`,
            ),
          );
          return;
        }
        if (done.version !== info.version)
          throw tcError('TC_ERR_PROTOCOL', `data plane: DONE version ${done.version} differs from INFO version ${info.version}`);
        this.resolve({ bytes: info.size, version: info.version, data: this.data! });
        return;
      }
      case FrameType.ERROR:
        this.rejectEnded(decodeError(payload, `data plane ${this.host.where}`));
        return;
      case FrameType.HELLO:
      case FrameType.WELCOME:
      case FrameType.LOAD:
      case FrameType.END:
      case FrameType.CREDIT:
      case FrameType.CANCEL:
      case FrameType.PUT:
      case FrameType.GET:
      case FrameType.SAPPEND:
      case FrameType.SREAD:
        throw this.unexpected(h);
    }
  }

  private onInfo(info: { size: number; version: number }): void {
    if (this.info !== undefined) throw tcError('TC_ERR_PROTOCOL', `data plane: a second INFO for '${this.req.key}'`);
    this.info = info;
    const { dest } = this;
    let refusal: Error | undefined;
    if (dest !== undefined && info.size < dest.length)
      refusal = tcError('TC_ERR_SHORT_READ', `'${this.req.key}' is ${info.size} bytes; the destination holds ${dest.length}`);
    else if (dest !== undefined && info.size > dest.length)
      refusal = tcError('TC_ERR_DESTINATION_SIZE', `'${this.req.key}' is ${info.size} bytes; the destination holds only ${dest.length}`);
    else if (dest === undefined && info.size > bufferConstants.MAX_LENGTH)
      refusal = tcError('TC_ERR_INVALID_ARGUMENT', `'${this.req.key}' is ${info.size} bytes, more than one Buffer holds; pass 'into'`);
    if (refusal !== undefined) {
      // The daemon is about to send DATA the caller has no room for: stop the request and the connection.
      this.host.socket.write(encodeHeader(FrameType.CANCEL, this.id, 0, 0));
      this.host.breakWith(refusal);
      return;
    }
    this.data = dest ?? Buffer.allocUnsafeSlow(info.size);
  }
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : tcError('TC_ERR_ABORTED', 'object request cancelled');
}

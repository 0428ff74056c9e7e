// Session SAPPEND and SREAD over one data-plane connection (docs/protocol.md "Sessions"), the client side. An
// append sends the caller's KV bytes as DATA frames straight from its buffer (no copy) within the daemon's
// CREDIT, like an object PUT, and is done only on the daemon's DONE (the bytes are then in the cold tier and
// recorded). A read lands DATA frames straight in the caller's buffer, grants credit back as frames land, and
// resolves only when exactly the range's bytes landed.

import { tcError } from '../core/errors.js';
import { encodeHeader, FrameType, type FrameHeader } from '../protocol/frames.js';
import { decodeError } from '../protocol/messages.js';
import { SAppend, SessionDone, SessionInfo, SRead } from '../protocol/session-messages.js';
import { Exchange, GET_WINDOW_BYTES, SendExchange, type ExchangeHost } from './object-requests.js';

/** What an SAPPEND asks for (its size is the source's length). */
export interface SessionAppendWire {
  readonly sessionId: string;
  readonly tokenOffset: number;
  readonly expectHash?: string | undefined;
  /** Deadline of the whole append, in ms (also sent to the daemon). */
  readonly timeoutMs: number;
}

/** What an SREAD asks for (`expectBytes` is the destination's length). */
export interface SessionReadWire {
  readonly sessionId: string;
  readonly tokenStart: number;
  readonly tokenEnd: number;
  readonly expectHash?: string | undefined;
  readonly timeoutMs: number;
}

/** A finished append: the session's tokens after it and its record's version. */
export interface SessionAppendEnd {
  readonly bytes: number;
  readonly tokens: number;
  readonly version: number;
}

/** A finished read: bytes landed, and whether the session was hot on the daemon. */
export interface SessionReadEnd {
  readonly bytes: number;
  readonly hit: boolean;
}

/**
 * A session append.
 *
 * @example const x = new SessionAppendExchange(host, id, req, kv); x.start(); const { tokens } = await x.promise;
 */
export class SessionAppendExchange extends SendExchange<SessionAppendEnd> {
  constructor(
    host: ExchangeHost,
    id: number,
    private readonly req: SessionAppendWire,
    source: Uint8Array,
    signal?: AbortSignal,
  ) {
    super(host, id, req.timeoutMs, `append of ${source.length} bytes to session '${req.sessionId}'`, source, signal);
  }

  protected requestFrame(size: number, eager: number): Buffer {
    const r = this.req;
    return SAppend.encode(this.id, {
      sessionId: r.sessionId,
      tokenOffset: r.tokenOffset,
      size,
      timeoutMs: r.timeoutMs,
      ...(r.expectHash === undefined ? {} : { expectHash: r.expectHash }),
      ...(eager > 0 ? { eager } : {}),
    });
  }

  protected doneOf(payload: Uint8Array): SessionAppendEnd {
    const done = SessionDone.decode(payload);
    if (done.tokens === undefined || done.version === undefined)
      throw tcError('TC_ERR_PROTOCOL', `data plane: DONE of an append to '${this.req.sessionId}' without tokens and version`);
    return { bytes: done.bytes, tokens: done.tokens, version: done.version };
  }
}

/**
 * A session read into `dest` (exactly the range's bytes: the daemon checks before INFO).
 *
 * @example const x = new SessionReadExchange(host, id, req, buffer); x.start(); const { hit } = await x.promise;
 */
export class SessionReadExchange extends Exchange<SessionReadEnd> {
  private size: number | undefined;
  private hit = false;
  private received = 0;

  constructor(
    host: ExchangeHost,
    id: number,
    private readonly req: SessionReadWire,
    private readonly dest: Uint8Array,
    signal?: AbortSignal,
  ) {
    super(host, id, req.timeoutMs, `read of tokens [${req.tokenStart}, ${req.tokenEnd}) of session '${req.sessionId}'`, signal);
  }

  /** Sends the SREAD. */
  start(): void {
    const r = this.req;
    this.host.socket.write(
      SRead.encode(this.id, {
        sessionId: r.sessionId,
        tokenStart: r.tokenStart,
        tokenEnd: r.tokenEnd,
        expectBytes: this.dest.length,
        credit: GET_WINDOW_BYTES,
        timeoutMs: r.timeoutMs,
        ...(r.expectHash === undefined ? {} : { expectHash: r.expectHash }),
      }),
    );
  }

  sink(h: FrameHeader): Uint8Array | undefined {
    // In order, within the range, after INFO: anything else is a protocol error (the decoder closes the connection).
    if (this.settled || this.size === undefined || h.offset !== this.received || h.offset + h.length > this.size) return undefined;
    return this.dest.subarray(h.offset, h.offset + h.length);
  }

  onFrame(h: FrameHeader, payload: Uint8Array, checksumOk: boolean): void {
    switch (h.type) {
      case FrameType.INFO: {
        const info = SessionInfo.decode(payload);
        if (this.size !== undefined) throw tcError('TC_ERR_PROTOCOL', `data plane: a second INFO for session '${this.req.sessionId}'`);
        if (info.size !== this.dest.length)
          throw tcError(
            'TC_ERR_PROTOCOL',
            `data plane: INFO of ${info.size} bytes for a read of ${this.dest.length} into the caller's buffer`,
          );
        this.size = info.size;
        this.hit = info.hit;
        return;
      }
      case FrameType.DATA:
        if (!checksumOk)
          throw tcError(
            'TC_ERR_CHECKSUM',
            `data plane: checksum mismatch at offset ${h.offset} (${h.length} bytes) of session '${this.req.sessionId}'`,
          );
        this.received += h.length;
        this.host.socket.write(encodeHeader(FrameType.CREDIT, this.id, 0, h.length));
        return;
      case FrameType.DONE: {
        const done = SessionDone.decode(payload);
        if (this.size === undefined) throw tcError('TC_ERR_PROTOCOL', `data plane: DONE before INFO for session '${this.req.sessionId}'`);
        if (this.received !== this.size || done.bytes !== this.size) {
          this.rejectEnded(
            tcError(
              'TC_ERR_SHORT_READ',
              `read of session '${this.req.sessionId}': ${this.received} of ${this.size} bytes landed (the daemon reported ${done.bytes})`,
            ),
          );
          return;
        }
        this.resolve({ bytes: this.size, hit: this.hit });
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
}

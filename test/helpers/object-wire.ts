// A data-plane object client written from docs/protocol.md "Objects" and "Sessions" alone (raw frames on a
// socket): PUT and SAPPEND with the daemon's credit, GET and SREAD with credit given back as frames land. For
// tests of the server side; the SDK has its own.

import { connect, type Socket } from 'node:net';
import { type TensorcastError } from '../../src/core/errors.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { crc32c, encodeDataHeader, encodeHeader, FrameType, type FrameHeader } from '../../src/protocol/frames.js';
import { decodeError, Done, Get, Hello, Info, Put, type GetBody, type PutBody } from '../../src/protocol/messages.js';
import { SAppend, SessionDone, SessionInfo, SRead, type SAppendBody, type SReadBody } from '../../src/protocol/session-messages.js';

/** What a request ended with. */
export type WireResult =
  | {
      readonly ok: true;
      readonly bytes: number;
      readonly version: number;
      readonly data?: Buffer;
      /** SAPPEND: the session's tokens after it; SREAD: whether it was hot. */
      readonly tokens?: number;
      readonly hit?: boolean;
    }
  | { readonly ok: false; readonly error: TensorcastError };

interface Op {
  readonly id: number;
  readonly kind: 'put' | 'get';
  /** A session request (SAPPEND/SREAD: INFO and DONE bodies of docs/protocol.md "Sessions"). */
  readonly session: boolean;
  hit?: boolean;
  readonly data: Uint8Array;
  sent: number;
  granted: number;
  received: Buffer | undefined;
  readonly frameBytes: number;
  /** Frame number sent with a wrong CRC (hostile tests). */
  readonly corrupt: number | undefined;
  frames: number;
  readonly resolve: (r: WireResult) => void;
}

/** One authenticated data-plane connection issuing object requests. */
export class ObjectWire {
  private readonly ops = new Map<number, Op>();
  private nextId = 1;
  closedWith: TensorcastError | undefined;
  /** Every frame type received, in order (for assertions on the sequence). */
  readonly seen: number[] = [];
  private readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    const decoder = new FrameDecoder({ sink: (h) => this.sink(h), onFrame: (h, p) => this.onFrame(h, p) });
    socket.on('data', (c: Buffer) => decoder.push(c));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    void this.closed.then(() => {
      for (const op of this.ops.values()) op.resolve({ ok: false, error: this.closedWith ?? (new Error('closed') as TensorcastError) });
      this.ops.clear();
    });
  }

  /** Connects and says HELLO; resolves once WELCOME (or an error) came. */
  static async open(address: string, token: string): Promise<ObjectWire> {
    const [host, port] = [address.slice(0, address.lastIndexOf(':')), address.slice(address.lastIndexOf(':') + 1)];
    const socket = connect({ host: host.replace(/^\[|\]$/g, ''), port: Number(port), noDelay: true });
    const w = new ObjectWire(socket);
    const welcomed = new Promise<void>((resolve, reject) => {
      w.welcome = resolve;
      w.refuse = reject;
    });
    socket.write(Hello.encode(0, { version: 1, token }));
    await welcomed;
    return w;
  }

  private welcome: (() => void) | undefined;
  private refuse: ((e: Error) => void) | undefined;

  /** Puts `data` under the body's key (size and crc filled in unless given; `eager` bytes sent at once). */
  put(
    body: Omit<PutBody, 'size'> & { size?: number },
    data: Uint8Array,
    opts: { frameBytes?: number; corruptFrame?: number } = {},
  ): Promise<WireResult> {
    return this.start(
      'put',
      Put.encode(0, { ...body, size: body.size ?? data.length }),
      data,
      opts.frameBytes ?? 1 << 20,
      opts.corruptFrame,
      body.eager ?? 0,
    );
  }

  /** Appends `data` to a session (size filled in unless given; `eager` bytes sent at once). */
  sappend(
    body: Omit<SAppendBody, 'size'> & { size?: number },
    data: Uint8Array,
    opts: { frameBytes?: number; corruptFrame?: number } = {},
  ): Promise<WireResult> {
    const frame = SAppend.encode(0, { ...body, size: body.size ?? data.length });
    return this.start('put', frame, data, opts.frameBytes ?? 1 << 20, opts.corruptFrame, body.eager ?? 0, true);
  }

  /** Reads a session range (credit 64 MiB unless given). */
  sread(body: Omit<SReadBody, 'credit'> & { credit?: number }): Promise<WireResult> {
    return this.start('get', SRead.encode(0, { ...body, credit: body.credit ?? 64 << 20 }), new Uint8Array(0), 0, undefined, 0, true);
  }

  /** Gets an object (credit 64 MiB unless given). */
  get(body: Omit<GetBody, 'credit'> & { credit?: number }): Promise<WireResult> {
    return this.start('get', Get.encode(0, { ...body, credit: body.credit ?? 64 << 20 }), new Uint8Array(0), 0, undefined);
  }

  /** Sends raw bytes (hostile tests). */
  raw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** The request id the next request gets. */
  get next(): number {
    return this.nextId;
  }

  /** Resolves when the socket closed. */
  whenClosed(): Promise<void> {
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }

  private start(
    kind: 'put' | 'get',
    frame: Buffer,
    data: Uint8Array,
    frameBytes: number,
    corrupt: number | undefined,
    eager = 0,
    session = false,
  ): Promise<WireResult> {
    const id = this.nextId++;
    frame.writeUInt32LE(id, 8);
    return new Promise((resolve) => {
      const op: Op = { id, kind, session, data, sent: 0, granted: eager, received: undefined, frameBytes, corrupt, frames: 0, resolve };
      this.ops.set(id, op);
      this.socket.write(frame);
      // Eager bytes go right behind the PUT, before any CREDIT.
      if (eager > 0) this.pump(op);
    });
  }

  private sink(h: FrameHeader): Uint8Array | undefined {
    const op = this.ops.get(h.requestId);
    if (op?.received === undefined || h.offset + h.length > op.received.length) return undefined;
    return op.received.subarray(h.offset, h.offset + h.length);
  }

  private onFrame(h: FrameHeader, payload: Uint8Array): void {
    this.seen.push(h.type);
    if (h.type === FrameType.WELCOME) return this.welcome?.();
    if (h.type === FrameType.ERROR && h.requestId === 0) {
      this.closedWith = decodeError(payload, 'daemon');
      this.refuse?.(this.closedWith);
      return;
    }
    const op = this.ops.get(h.requestId);
    if (op === undefined) return;
    switch (h.type) {
      case FrameType.CREDIT:
        op.granted += h.offset;
        this.pump(op);
        return;
      case FrameType.INFO:
        if (op.session) {
          const info = SessionInfo.decode(payload);
          op.hit = info.hit;
          op.received = Buffer.alloc(info.size);
        } else op.received = Buffer.alloc(Info.decode(payload).size);
        return;
      case FrameType.DATA:
        this.socket.write(encodeHeader(FrameType.CREDIT, op.id, 0, h.length));
        return;
      case FrameType.DONE: {
        this.ops.delete(op.id);
        const data = op.received === undefined ? {} : { data: op.received };
        if (op.session) {
          const d = SessionDone.decode(payload);
          const tokens = d.tokens === undefined ? {} : { tokens: d.tokens };
          op.resolve({
            ok: true,
            bytes: d.bytes,
            version: d.version ?? 0,
            ...data,
            ...tokens,
            ...(op.hit === undefined ? {} : { hit: op.hit }),
          });
          return;
        }
        const d = Done.decode(payload);
        op.resolve({ ok: true, bytes: d.bytes, version: d.version, ...data });
        return;
      }
      case FrameType.ERROR:
        this.ops.delete(op.id);
        op.resolve({ ok: false, error: decodeError(payload, 'daemon') });
        return;
      case FrameType.HELLO:
      case FrameType.LOAD:
      case FrameType.END:
      case FrameType.CANCEL:
      case FrameType.PUT:
      case FrameType.GET:
      case FrameType.SAPPEND:
      case FrameType.SREAD:
        return;
    }
  }

  /** Sends DATA frames of a put within the credit granted. */
  private pump(op: Op): void {
    while (op.sent < op.data.length && op.sent < op.granted) {
      const n = Math.min(op.frameBytes, op.data.length - op.sent, op.granted - op.sent);
      const payload = op.data.subarray(op.sent, op.sent + n);
      this.socket.write(
        op.frames++ === op.corrupt
          ? badDataFrame(op.id, op.sent, payload)
          : Buffer.concat([encodeDataHeader(op.id, op.sent, payload), payload]),
      );
      op.sent += n;
    }
  }
}

/** A DATA frame with a wrong CRC (hostile tests). */
export function badDataFrame(requestId: number, offset: number, payload: Uint8Array): Buffer {
  return Buffer.concat([encodeHeader(FrameType.DATA, requestId, payload.length, offset, (crc32c(payload) ^ 1) >>> 0), payload]);
}

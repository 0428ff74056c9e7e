// One data-plane connection from the client: HELLO with the token, then LOAD requests, one at a time.
// The socket reads through `onread` straight into the caller's buffer; each DATA frame's CRC32C is checked
// before its bytes count as delivered, and credit is granted back as frames land.

import { connect as netConnect, type Socket } from 'node:net';
import { errorFromWire, tcError, type TensorcastError } from '../core/errors.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import { encodeControl, encodeHeader, FrameType, parseControl, type FrameHeader } from '../protocol/frames.js';
import type { ViewSpec } from '../layout/view.js';

/** Credit granted per request: how many bytes the daemon may send ahead of what has landed. */
const WINDOW_BYTES = 64 << 20;

/** What a LOAD asks for. */
export interface RangeRequest {
  readonly artifactId: string;
  readonly view: ViewSpec | undefined;
  readonly viewId: string | undefined;
  /** Output byte range `[start, end)`; `dest` receives exactly these bytes. */
  readonly start: number;
  readonly end: number;
  readonly timeoutMs: number;
}

/** What the daemon reported at the end of a request. */
export interface RangeEnd {
  readonly bytes: number;
  readonly route: string;
  readonly source: string;
}

interface Pending {
  readonly id: number;
  readonly req: RangeRequest;
  readonly dest: Uint8Array;
  received: number;
  readonly resolve: (end: RangeEnd) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

function rebuild(body: Record<string, unknown>): TensorcastError {
  return errorFromWire(body['code'], body['message'], 'daemon error');
}

/**
 * A data-plane connection.
 *
 * @example const c = await DataConnection.open('127.0.0.1:7071', token); await c.load(req, dest); c.close();
 */
export class DataConnection {
  private pending: Pending | undefined;
  private nextId = 1;
  private broken: Error | undefined;
  private welcomed: ((ok: Error | undefined) => void) | undefined;
  private readonly decoder: FrameDecoder;
  private socket!: Socket;

  private constructor() {
    this.decoder = new FrameDecoder({ sink: (h) => this.sink(h), onFrame: (h, p, ok) => this.onFrame(h, p, ok) });
  }

  /** Connects and authenticates. @throws TC_ERR_UNAVAILABLE, TC_ERR_AUTH, TC_ERR_TIMEOUT */
  static async open(address: string, token: string, timeoutMs = 10_000): Promise<DataConnection> {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
    if (!m) throw tcError('TC_ERR_INVALID_ARGUMENT', `bad data-plane address '${address}'`);
    const c = new DataConnection();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        c.socket.destroy();
        reject(tcError('TC_ERR_TIMEOUT', `data plane ${address}: no WELCOME within ${timeoutMs} ms`));
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
      c.socket.on('connect', () =>
        c.socket.write(encodeControl(FrameType.HELLO, 0, { version: 1, token, client: 'tensorcast-node/0.1.0' })),
      );
      c.socket.on('error', (e: NodeJS.ErrnoException) =>
        c.breakWith(tcError('TC_ERR_UNAVAILABLE', `data plane ${address}: ${e.code ?? e.message}`, { cause: e })),
      );
      c.socket.on('close', () => c.breakWith(tcError('TC_ERR_UNAVAILABLE', `data plane ${address}: connection closed by the daemon`)));
    });
    return c;
  }

  /** True while usable. */
  get usable(): boolean {
    return this.broken === undefined;
  }

  private breakWith(error: Error): void {
    if (this.broken !== undefined) return;
    this.broken = error;
    this.socket.destroy();
    this.welcomed?.(error);
    this.welcomed = undefined;
    const p = this.pending;
    this.pending = undefined;
    if (p !== undefined) {
      clearTimeout(p.timer);
      p.reject(error);
    }
  }

  private sink(h: FrameHeader): Uint8Array | undefined {
    const p = this.pending;
    if (p === undefined || h.requestId !== p.id) return undefined;
    const from = h.offset - p.req.start;
    if (from < 0 || from + h.length > p.dest.length) return undefined;
    return p.dest.subarray(from, from + h.length);
  }

  private onFrame(h: FrameHeader, payload: Uint8Array, checksumOk: boolean): void {
    if (this.welcomed !== undefined) {
      if (h.type === FrameType.WELCOME) {
        this.welcomed(undefined);
        this.welcomed = undefined;
        return;
      }
      if (h.type === FrameType.ERROR) throw rebuild(parseControl(payload, 'ERROR'));
      throw tcError('TC_ERR_PROTOCOL', `data plane: expected WELCOME, got frame type ${h.type}`);
    }
    const p = this.pending;
    if (h.type === FrameType.ERROR && h.requestId === 0) throw rebuild(parseControl(payload, 'ERROR'));
    if (p === undefined || h.requestId !== p.id) throw tcError('TC_ERR_PROTOCOL', `data plane: frame for unknown request ${h.requestId}`);
    switch (h.type) {
      case FrameType.DATA:
        if (!checksumOk)
          throw tcError('TC_ERR_CHECKSUM', `data plane: checksum mismatch at offset ${h.offset} (${h.length} bytes); the load failed`);
        p.received += h.length;
        this.socket.write(encodeHeader(FrameType.CREDIT, p.id, 0, h.length));
        return;
      case FrameType.END: {
        const end = parseControl(payload, 'END');
        this.pending = undefined;
        clearTimeout(p.timer);
        if (p.received !== p.dest.length) {
          throw tcError('TC_ERR_PROTOCOL', `data plane: END after ${p.received} of ${p.dest.length} bytes`);
        }
        p.resolve({ bytes: p.received, route: String(end['route']), source: String(end['source']) });
        return;
      }
      case FrameType.ERROR:
        this.pending = undefined;
        clearTimeout(p.timer);
        p.reject(rebuild(parseControl(payload, 'ERROR')));
        return;
      case FrameType.HELLO:
      case FrameType.WELCOME:
      case FrameType.LOAD:
      case FrameType.CREDIT:
      case FrameType.CANCEL:
        throw tcError('TC_ERR_PROTOCOL', `data plane: unexpected frame type ${h.type} from the daemon`);
    }
  }

  /**
   * Loads `[req.start, req.end)` of a view into `dest` (exactly that long).
   *
   * @throws TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE (connection lost, retryable), TC_ERR_CHECKSUM, the daemon's code
   */
  load(req: RangeRequest, dest: Uint8Array): Promise<RangeEnd> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.pending) return Promise.reject(tcError('TC_ERR_INTERNAL', 'DataConnection: one request at a time'));
    if (dest.length !== req.end - req.start)
      return Promise.reject(tcError('TC_ERR_DESTINATION_SIZE', 'destination does not match the range'));
    return new Promise<RangeEnd>((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.breakWith(tcError('TC_ERR_TIMEOUT', `load of ${req.end - req.start} bytes did not finish within ${req.timeoutMs} ms`));
      }, req.timeoutMs);
      this.pending = { id, req, dest, received: 0, resolve, reject, timer };
      this.socket.write(
        encodeControl(FrameType.LOAD, id, {
          artifactId: req.artifactId,
          view: req.view ?? null,
          viewId: req.viewId ?? null,
          start: req.start,
          end: req.end,
          credit: WINDOW_BYTES,
          timeoutMs: req.timeoutMs,
        }),
      );
    });
  }

  close(): void {
    this.broken ??= tcError('TC_ERR_ABORTED', 'connection closed by the client');
    this.socket.destroy();
  }
}

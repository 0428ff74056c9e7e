// A resumable frame decoder. Bytes may arrive split anywhere. Fed through `push` (any chunks), or through
// `readBuffer`/`commit` as a socket's `onread` target: while a DATA payload is pending and a sink gave it a
// destination, the socket reads straight into the destination (no intermediate copy).

import { tcError } from '../core/errors.js';
import {
  crc32c,
  decodeHeader,
  FrameType,
  HEADER_BYTES,
  MAX_CONTROL_BYTES,
  MAX_DATA_BYTES,
  protocolError,
  type FrameHeader,
} from './frames.js';

/** Options of a {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Called with every complete frame. `checksumOk` is false when the payload's CRC32C did not match. */
  readonly onFrame: (header: FrameHeader, payload: Uint8Array, checksumOk: boolean) => void;
  /** Where a DATA payload should land (exactly `header.length` bytes), or undefined to reject the frame. */
  readonly sink?: (header: FrameHeader) => Uint8Array | undefined;
  readonly maxControlBytes?: number;
  readonly maxDataBytes?: number;
  /** Size of the scratch buffer headers and control frames are read through. */
  readonly scratchBytes?: number;
}

/** Reads smaller than this go through the scratch buffer even when a destination is pending. */
const DIRECT_MIN_BYTES = 16 << 10;

/**
 * Decodes frames.
 *
 * @example
 * const d = new FrameDecoder({ onFrame: (h, p) => ... });
 * net.connect({ port, onread: { buffer: () => d.readBuffer(), callback: (n) => (d.commit(n), true) } });
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFilled = 0;
  private current: FrameHeader | undefined;
  private target: Uint8Array | undefined;
  private filled = 0;
  /** CRC32C of the payload bytes landed so far: updated as each read lands, while its bytes are in cache. */
  private crc = 0;
  private readonly scratch: Buffer;
  private lastWasDirect = false;
  private failed: Error | undefined;
  private maxControl: number;
  private maxData: number;

  constructor(private readonly opts: FrameDecoderOptions) {
    this.scratch = Buffer.allocUnsafe(opts.scratchBytes ?? 64 << 10);
    this.maxControl = opts.maxControlBytes ?? MAX_CONTROL_BYTES;
    this.maxData = opts.maxDataBytes ?? MAX_DATA_BYTES;
  }

  /**
   * Changes the frame limits for frames whose header has not been read yet (a server raises them once the
   * peer authenticated).
   */
  setLimits(limits: { readonly maxControlBytes?: number; readonly maxDataBytes?: number }): void {
    this.maxControl = limits.maxControlBytes ?? this.maxControl;
    this.maxData = limits.maxDataBytes ?? this.maxData;
  }

  /**
   * Stops writing the DATA payload being read into the destination its sink gave: the rest of that payload
   * lands in a private buffer and is dropped. A receiver calls this when it gives up on a request, so no byte
   * reaches the caller's buffer after it was told the request failed.
   *
   * @returns false when a socket read into the old destination is already registered (the last
   *   {@link readBuffer} handed it out): the caller must then close the connection to stop that read.
   */
  detachTarget(): boolean {
    if (this.current?.type !== FrameType.DATA || this.target === undefined) return true;
    if (this.lastWasDirect) return false;
    const spare = Buffer.allocUnsafe(this.target.length);
    spare.set(this.target.subarray(0, this.filled));
    this.target = spare;
    return true;
  }

  /** Feeds bytes. @throws TC_ERR_PROTOCOL; after one error the decoder stays failed. */
  push(chunk: Uint8Array): void {
    if (this.failed) throw this.failed;
    try {
      let at = 0;
      while (at < chunk.length) {
        if (this.current === undefined) {
          const n = Math.min(HEADER_BYTES - this.headerFilled, chunk.length - at);
          this.header.set(chunk.subarray(at, at + n), this.headerFilled);
          this.headerFilled += n;
          at += n;
          if (this.headerFilled === HEADER_BYTES) this.startFrame();
        } else {
          const target = this.target!;
          const n = Math.min(target.length - this.filled, chunk.length - at);
          target.set(chunk.subarray(at, at + n), this.filled);
          this.crc = crc32c(target.subarray(this.filled, this.filled + n), this.crc);
          this.filled += n;
          at += n;
          if (this.filled === target.length) this.finishFrame();
        }
      }
    } catch (error) {
      this.failed = error as Error;
      throw error;
    }
  }

  /** The buffer the next socket read should fill. */
  readBuffer(): Uint8Array {
    const target = this.target;
    if (this.current !== undefined && target !== undefined && target.length - this.filled >= DIRECT_MIN_BYTES) {
      this.lastWasDirect = true;
      return target.subarray(this.filled);
    }
    this.lastWasDirect = false;
    return this.scratch;
  }

  /** Records that `n` bytes landed in the last {@link readBuffer}. @throws TC_ERR_PROTOCOL */
  commit(n: number): void {
    if (!this.lastWasDirect) {
      this.push(this.scratch.subarray(0, n));
      return;
    }
    this.crc = crc32c(this.target!.subarray(this.filled, this.filled + n), this.crc);
    this.filled += n;
    if (this.filled === this.target!.length) this.finishFrame();
  }

  private startFrame(): void {
    const h = decodeHeader(this.header, this.maxControl, this.maxData);
    this.current = h;
    this.headerFilled = 0;
    this.filled = 0;
    this.crc = 0;
    if (h.type === FrameType.DATA) {
      const dest = this.opts.sink?.(h);
      if (dest === undefined) throw protocolError(`unexpected DATA frame for request ${h.requestId} at offset ${h.offset}`);
      if (dest.length !== h.length) throw tcError('TC_ERR_INTERNAL', 'data sink returned a buffer of the wrong size');
      this.target = dest;
    } else {
      this.target = Buffer.allocUnsafe(h.length);
    }
    if (h.length === 0) this.finishFrame();
  }

  private finishFrame(): void {
    const h = this.current!;
    const payload = this.target!;
    this.current = undefined;
    this.target = undefined;
    this.filled = 0;
    const ok = this.crc === h.crc;
    if (!ok && h.type !== FrameType.DATA) throw protocolError(`checksum mismatch on a control frame (type ${h.type})`);
    this.opts.onFrame(h, payload, ok);
  }
}

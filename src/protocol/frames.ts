// The data-plane wire format (docs/protocol.md): a fixed 32-byte little-endian header, then the payload.
// Control frames carry JSON; DATA frames carry view bytes at an output offset, with a CRC32C of the payload.

import { crc32c } from '../bytes/crc32c.js';
import { tcError } from '../core/errors.js';

/** "TCDP" read as a little-endian u32. */
export const MAGIC = 0x50444354;
/** The wire version both sides must speak. */
export const PROTOCOL_VERSION = 1;
/** Size of every frame header. */
export const HEADER_BYTES = 32;
/** Largest control (JSON) payload. */
export const MAX_CONTROL_BYTES = 16 << 20;
/** Largest DATA payload a peer may send. */
export const MAX_DATA_BYTES = 16 << 20;

/** Frame types. */
export const FrameType = {
  HELLO: 1,
  WELCOME: 2,
  LOAD: 3,
  DATA: 4,
  END: 5,
  ERROR: 6,
  CREDIT: 7,
  CANCEL: 8,
  /** Object put (client -> daemon); the client then sends DATA frames within the CREDIT the daemon grants. */
  PUT: 9,
  /** Object get (client -> daemon). */
  GET: 10,
  /** The object a GET is about to send: its size and version (daemon -> client). */
  INFO: 11,
  /** An object PUT or GET, or a session SAPPEND or SREAD, is complete (daemon -> client). */
  DONE: 12,
  /** Session append (client -> daemon); DATA frames follow within the daemon's CREDIT, as for PUT. */
  SAPPEND: 13,
  /** Session read (client -> daemon); answered with INFO, DATA within the client's credit, DONE, as for GET. */
  SREAD: 14,
} as const;
/** One of the {@link FrameType} codes. */
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];
const KNOWN = new Set<number>(Object.values(FrameType));

/** A decoded frame header. */
export interface FrameHeader {
  readonly type: FrameTypeCode;
  readonly requestId: number;
  readonly length: number;
  /** DATA: output offset of the payload; CREDIT: bytes granted. */
  readonly offset: number;
  readonly crc: number;
}

/** Encodes a header. */
export function encodeHeader(type: FrameTypeCode, requestId: number, length: number, offset = 0, crc = 0): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt8(PROTOCOL_VERSION, 4);
  b.writeUInt8(type, 5);
  b.writeUInt32LE(requestId >>> 0, 8);
  b.writeUInt32LE(length, 12);
  b.writeBigUInt64LE(BigInt(offset), 16);
  b.writeUInt32LE(crc >>> 0, 24);
  return b;
}

/** Encodes a control frame: header + JSON payload (with its CRC32C). */
export function encodeControl(type: FrameTypeCode, requestId: number, body: unknown, offset = 0): Buffer {
  const json = Buffer.from(JSON.stringify(body ?? null), 'utf8');
  if (json.length > MAX_CONTROL_BYTES)
    throw tcError('TC_ERR_INVALID_ARGUMENT', `control frame of ${json.length} bytes exceeds ${MAX_CONTROL_BYTES}`);
  return Buffer.concat([encodeHeader(type, requestId, json.length, offset, crc32c(json)), json]);
}

/** The header of a DATA frame for `payload` at output `offset`. */
export function encodeDataHeader(requestId: number, offset: number, payload: Uint8Array): Buffer {
  return encodeHeader(FrameType.DATA, requestId, payload.length, offset, crc32c(payload));
}

/** Parses and checks a header. @throws TC_ERR_PROTOCOL */
export function decodeHeader(b: Uint8Array, maxControlBytes: number, maxDataBytes: number): FrameHeader {
  const v = Buffer.from(b.buffer, b.byteOffset, HEADER_BYTES);
  if (v.readUInt32LE(0) !== MAGIC) throw protocolError('bad magic (not a tensorcast data-plane stream)');
  const version = v.readUInt8(4);
  if (version !== PROTOCOL_VERSION) throw protocolError(`unsupported protocol version ${version} (this side speaks ${PROTOCOL_VERSION})`);
  const type = v.readUInt8(5);
  if (!KNOWN.has(type)) throw protocolError(`unknown frame type ${type}`);
  const length = v.readUInt32LE(12);
  const limit = type === FrameType.DATA ? maxDataBytes : maxControlBytes;
  if (length > limit) throw protocolError(`frame of ${length} bytes exceeds the limit of ${limit}`);
  const offset = v.readBigUInt64LE(16);
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw protocolError('frame offset beyond 2^53');
  return { type: type as FrameTypeCode, requestId: v.readUInt32LE(8), length, offset: Number(offset), crc: v.readUInt32LE(24) };
}

/** A protocol violation. */
export function protocolError(message: string): Error {
  return tcError('TC_ERR_PROTOCOL', `data plane: ${message}`);
}

/** Parses a control payload as a JSON object. @throws TC_ERR_PROTOCOL */
export function parseControl(payload: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString('utf8'));
  } catch {
    throw protocolError(`${what} frame: payload is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw protocolError(`${what} frame: payload is not a JSON object`);
  return v as Record<string, unknown>;
}

export { crc32c };

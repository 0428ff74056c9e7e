// Parses and validates a safetensors header (rules R1-R11 of docs/formats.md, same accept/reject as the
// reference crate 0.8.0, plus explicit duplicate-name and safe-integer rejection) from the first 8+N
// bytes and the file size alone; tensor data is never read.

import { isUtf8 } from 'node:buffer';
import { tcError } from '../core/errors.js';
import { dtypeBits, isDtype, type Dtype } from '../core/dtypes.js';
import { JsonReader } from './json-reader.js';

/** Largest header length the reference reader accepts (R2). */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor as declared by a safetensors header. */
export interface HeaderTensorInfo {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Offsets relative to the start of the byte buffer (8 + N). */
  readonly begin: number;
  readonly end: number;
}

/** A validated safetensors header. */
export interface SafetensorsHeader {
  /** N: the header length in bytes, padding included. */
  readonly headerByteLength: number;
  /** Absolute file offset of the byte buffer: 8 + N. */
  readonly dataStart: number;
  /** The `__metadata__` map, or null when absent or null. */
  readonly metadata: Readonly<Record<string, string>> | null;
  /** Tensors in data order (ascending offsets). */
  readonly tensors: readonly HeaderTensorInfo[];
}

/**
 * Reads N from the 8-byte prefix and checks R1-R3 against the file size.
 *
 * @throws TC_ERR_FORMAT_HEADER_TOO_SMALL, TC_ERR_FORMAT_HEADER_TOO_LARGE, TC_ERR_FORMAT_INVALID_HEADER_LENGTH
 */
export function readHeaderLength(prefix: Uint8Array, fileByteLength: number, what: string): number {
  if (fileByteLength < 8 || prefix.length < 8) {
    throw tcError('TC_ERR_FORMAT_HEADER_TOO_SMALL', `${what}: file of ${fileByteLength} bytes is shorter than the 8-byte header length`, {
      details: { file: what },
    });
  }
  const n = Buffer.from(prefix.buffer, prefix.byteOffset, 8).readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw tcError('TC_ERR_FORMAT_HEADER_TOO_LARGE', `${what}: header length ${n} exceeds ${MAX_HEADER_BYTES} bytes`, {
      details: { file: what, offset: 0 },
    });
  }
  const headerByteLength = Number(n);
  if (8 + headerByteLength > fileByteLength) {
    throw tcError(
      'TC_ERR_FORMAT_INVALID_HEADER_LENGTH',
      `${what}: header length ${headerByteLength} runs past the end of the ${fileByteLength}-byte file`,
      { details: { file: what, offset: 0 } },
    );
  }
  return headerByteLength;
}

/**
 * Validates a whole safetensors header. `bytes` holds at least the first 8 + N bytes of the file.
 *
 * @throws a FormatError with a `TC_ERR_FORMAT_*` code naming the file and the tensor or byte offset.
 * @example const header = parseSafetensorsHeader(first8PlusN, stat.size, 'model.safetensors');
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileByteLength: number, what: string): SafetensorsHeader {
  const headerByteLength = readHeaderLength(bytes, fileByteLength, what);
  if (bytes.length < 8 + headerByteLength) {
    throw tcError('TC_ERR_INTERNAL', `${what}: parseSafetensorsHeader needs the first ${8 + headerByteLength} bytes`);
  }
  const json = bytes.subarray(8, 8 + headerByteLength);
  if (!isUtf8(json)) {
    throw tcError('TC_ERR_FORMAT_INVALID_UTF8', `${what}: header is not valid UTF-8`, { details: { file: what, offset: 8 } });
  }
  const { metadata, tensors } = parseHeaderJson(json, what);
  validateLayout(tensors, what);
  const dataByteLength = tensors.length === 0 ? 0 : tensors[tensors.length - 1]!.end;
  if (8 + headerByteLength + dataByteLength !== fileByteLength) {
    throw tcError(
      'TC_ERR_FORMAT_INCOMPLETE_BUFFER',
      `${what}: header + tensor data cover ${8 + headerByteLength + dataByteLength} bytes but the file has ${fileByteLength}`,
      { details: { file: what, offset: 8 + headerByteLength + dataByteLength } },
    );
  }
  return { headerByteLength, dataStart: 8 + headerByteLength, metadata, tensors };
}

interface ParsedHeader {
  metadata: Record<string, string> | null;
  tensors: HeaderTensorInfo[];
}

function parseHeaderJson(json: Uint8Array, what: string): ParsedHeader {
  const r = new JsonReader(json, { what, errorCode: 'TC_ERR_FORMAT_INVALID_JSON', baseOffset: 8 });
  const entry = (msg: string, at: number, name: string): Error =>
    tcError('TC_ERR_FORMAT_INVALID_ENTRY', `${what}: tensor '${name}': ${msg} at byte ${at}`, {
      details: { file: what, tensor: name, offset: at },
    });
  let metadata: Record<string, string> | null = null;
  let sawMetadata = false;
  const tensors: HeaderTensorInfo[] = [];
  const seen = new Set<string>();
  r.beginObject();
  for (let key = r.nextKey(); key !== undefined; key = r.nextKey()) {
    if (key === '__metadata__') {
      if (sawMetadata) throw r.error("duplicate field '__metadata__'", r.offset, 'TC_ERR_FORMAT_INVALID_ENTRY');
      sawMetadata = true;
      metadata = readMetadata(r);
      continue;
    }
    const at = r.offset;
    if (seen.has(key)) {
      throw tcError('TC_ERR_FORMAT_DUPLICATE_NAME', `${what}: tensor '${key}' is declared twice (second at byte ${at})`, {
        details: { file: what, tensor: key, offset: at },
      });
    }
    seen.add(key);
    if (r.peekKind() !== 'object') throw entry('expected an object', at, key);
    tensors.push(readTensorEntry(r, key, what, entry));
  }
  r.end();
  return { metadata, tensors };
}

function readMetadata(r: JsonReader): Record<string, string> | null {
  if (r.peekKind() === 'null') {
    r.readLiteral();
    return null;
  }
  if (r.peekKind() !== 'object') throw r.error('__metadata__ must be an object of strings', r.offset, 'TC_ERR_FORMAT_INVALID_ENTRY');
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  r.beginObject();
  for (let key = r.nextKey(); key !== undefined; key = r.nextKey()) {
    if (r.peekKind() !== 'string') {
      throw r.error(`__metadata__ value of '${key}' must be a string`, r.offset, 'TC_ERR_FORMAT_INVALID_ENTRY');
    }
    out[key] = r.readString();
  }
  return out;
}

function readTensorEntry(
  r: JsonReader,
  name: string,
  what: string,
  entry: (msg: string, at: number, name: string) => Error,
): HeaderTensorInfo {
  let dtype: Dtype | undefined;
  let shape: number[] | undefined;
  let offsets: number[] | undefined;
  const start = r.offset;
  r.beginObject();
  for (let field = r.nextKey(); field !== undefined; field = r.nextKey()) {
    const at = r.offset;
    if (field === 'dtype') {
      if (dtype !== undefined) throw entry("duplicate field 'dtype'", at, name);
      if (r.peekKind() !== 'string') throw entry('dtype must be a string', at, name);
      const d = r.readString();
      if (!isDtype(d)) {
        throw tcError('TC_ERR_FORMAT_UNKNOWN_DTYPE', `${what}: tensor '${name}': unknown dtype '${d}' at byte ${at}`, {
          details: { file: what, tensor: name, offset: at },
        });
      }
      dtype = d;
    } else if (field === 'shape') {
      if (shape !== undefined) throw entry("duplicate field 'shape'", at, name);
      shape = readUnsignedArray(r, name, 'shape', entry);
    } else if (field === 'data_offsets') {
      if (offsets !== undefined) throw entry("duplicate field 'data_offsets'", at, name);
      offsets = readUnsignedArray(r, name, 'data_offsets', entry);
      if (offsets.length !== 2) throw entry(`data_offsets must hold 2 integers, found ${offsets.length}`, at, name);
    } else {
      r.skipValue();
    }
  }
  if (dtype === undefined) throw entry("missing field 'dtype'", start, name);
  if (shape === undefined) throw entry("missing field 'shape'", start, name);
  if (offsets === undefined) throw entry("missing field 'data_offsets'", start, name);
  return { name, dtype, shape, begin: offsets[0]!, end: offsets[1]! };
}

function readUnsignedArray(r: JsonReader, name: string, field: string, entry: (msg: string, at: number, name: string) => Error): number[] {
  if (r.peekKind() !== 'array') throw entry(`${field} must be an array of integers`, r.offset, name);
  const out: number[] = [];
  r.beginArray();
  while (r.nextItem()) {
    if (r.peekKind() !== 'number') throw entry(`${field} must hold only integers`, r.offset, name);
    out.push(r.readSafeUnsigned(`tensor '${name}' ${field}`, 'TC_ERR_FORMAT_INVALID_ENTRY'));
  }
  return out;
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** R7-R10: contiguous, gap-free coverage in offset order, and exact sizes. Sorts `tensors` in place. */
function validateLayout(tensors: HeaderTensorInfo[], what: string): void {
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const t of tensors) {
    const fail = (
      code: 'TC_ERR_FORMAT_INVALID_OFFSET' | 'TC_ERR_FORMAT_OVERFLOW' | 'TC_ERR_FORMAT_MISALIGNED' | 'TC_ERR_FORMAT_SIZE_MISMATCH',
      msg: string,
    ): Error => tcError(code, `${what}: tensor '${t.name}': ${msg}`, { details: { file: what, tensor: t.name } });
    if (t.begin !== cursor || t.end < t.begin) {
      const why =
        t.end < t.begin
          ? 'ends before it begins'
          : t.begin > cursor
            ? `leaves a gap before it (expected offset ${cursor})`
            : `overlaps the previous tensor (expected offset ${cursor})`;
      throw fail('TC_ERR_FORMAT_INVALID_OFFSET', `data_offsets [${t.begin}, ${t.end}] ${why}`);
    }
    // Exact in doubles while below 2^53; BigInt only for the rare huge shapes.
    let small = 1;
    for (const d of t.shape) small *= d;
    const smallBits = small * dtypeBits(t.dtype);
    if (Number.isSafeInteger(smallBits)) {
      if (smallBits % 8 !== 0) throw fail('TC_ERR_FORMAT_MISALIGNED', `${small} elements of ${t.dtype} do not fill whole bytes`);
      if (smallBits / 8 !== t.end - t.begin) {
        throw fail(
          'TC_ERR_FORMAT_SIZE_MISMATCH',
          `shape [${t.shape.join(', ')}] of ${t.dtype} needs ${smallBits / 8} bytes but data_offsets span ${t.end - t.begin}`,
        );
      }
      cursor = t.end;
      continue;
    }
    let elements = 1n;
    for (const d of t.shape) {
      elements *= BigInt(d);
      if (elements > U64_MAX) throw fail('TC_ERR_FORMAT_OVERFLOW', `element count of shape [${t.shape.join(', ')}] overflows u64`);
    }
    const bits = elements * BigInt(dtypeBits(t.dtype));
    if (bits > U64_MAX) throw fail('TC_ERR_FORMAT_OVERFLOW', `bit size of shape [${t.shape.join(', ')}] overflows u64`);
    if (bits % 8n !== 0n) {
      throw fail('TC_ERR_FORMAT_MISALIGNED', `${elements} elements of ${t.dtype} do not fill whole bytes`);
    }
    if (bits / 8n !== BigInt(t.end - t.begin)) {
      throw fail(
        'TC_ERR_FORMAT_SIZE_MISMATCH',
        `shape [${t.shape.join(', ')}] of ${t.dtype} needs ${bits / 8n} bytes but data_offsets span ${t.end - t.begin}`,
      );
    }
    cursor = t.end;
  }
}

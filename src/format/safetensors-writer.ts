// Writes safetensors files byte-identical to the reference serializer: tensors ordered by dtype
// (descending enum order) then name, compact header with `__metadata__` first, padded with spaces to a
// multiple of 8 (or so that the data starts on a 4096-byte boundary). Data is streamed, never one Buffer,
// into a temporary file that is renamed into place only when complete.

import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { tcError, wrapIoError } from '../core/errors.js';
import { dtypeBits, dtypeRank, type Dtype } from '../core/dtypes.js';
import { compareUtf8 } from '../core/strings.js';
import { MAX_HEADER_BYTES } from './safetensors-header.js';
import { writeFully } from './file-io.js';

/** A tensor to be written: name, dtype and shape (its bytes come separately). */
export interface TensorDescriptor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
}

/** Where each tensor lands in a file to be written. */
export interface SafetensorsLayout {
  /** The 8-byte length prefix and the padded header JSON. */
  readonly header: Buffer;
  /** Tensors in file order with their offsets in the byte buffer. */
  readonly tensors: readonly (TensorDescriptor & { readonly begin: number; readonly end: number })[];
  /** Total bytes of tensor data. */
  readonly dataByteLength: number;
}

/** Options of {@link planSafetensors}. */
export interface PlanOptions {
  /** `__metadata__`; keys keep their order. `{ format: 'pt' }` makes files transformers accepts. */
  readonly metadata?: Readonly<Record<string, string>> | null;
  /** Pad the header so the data starts at a multiple of this many bytes (8 by default; 4096 for page alignment). */
  readonly dataAlignment?: number;
}

/** Byte length of a tensor of `dtype` and `shape`. @throws TC_ERR_INVALID_ARGUMENT for partial bytes. */
export function tensorByteLength(dtype: Dtype, shape: readonly number[]): number {
  let elements = 1;
  for (const d of shape) elements *= d;
  const bits = elements * dtypeBits(dtype);
  if (!Number.isSafeInteger(bits) || bits % 8 !== 0) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `shape [${shape.join(', ')}] of ${dtype} does not fill whole bytes`);
  }
  return bits / 8;
}

/** The reference writer's order: dtype descending, then name ascending (UTF-8 byte order). */
export function compareWriteOrder(a: TensorDescriptor, b: TensorDescriptor): number {
  return dtypeRank(b.dtype) - dtypeRank(a.dtype) || compareUtf8(a.name, b.name);
}

/**
 * Lays out a safetensors file: order, offsets and the exact header bytes.
 *
 * @example const layout = planSafetensors([{ name: 'w', dtype: 'F32', shape: [2, 2] }], { metadata: { format: 'pt' } });
 */
export function planSafetensors(tensors: readonly TensorDescriptor[], options: PlanOptions = {}): SafetensorsLayout {
  const ordered = [...tensors].sort(compareWriteOrder);
  const names = new Set<string>();
  let cursor = 0;
  const placed = ordered.map((t) => {
    if (names.has(t.name)) throw tcError('TC_ERR_FORMAT_DUPLICATE_NAME', `tensor '${t.name}' given twice`);
    names.add(t.name);
    const begin = cursor;
    cursor += tensorByteLength(t.dtype, t.shape);
    return { name: t.name, dtype: t.dtype, shape: [...t.shape], begin, end: cursor };
  });
  const parts: string[] = [];
  if (options.metadata !== undefined && options.metadata !== null) {
    const md = Object.entries(options.metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    parts.push(`"__metadata__":{${md.join(',')}}`);
  }
  for (const t of placed) {
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${t.begin},${t.end}]}`);
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const alignment = options.dataAlignment ?? 8;
  if (!Number.isInteger(alignment) || alignment < 8 || alignment % 8 !== 0) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `dataAlignment must be a positive multiple of 8, got ${alignment}`);
  }
  const headerByteLength = Math.ceil((8 + json.length) / alignment) * alignment - 8;
  if (headerByteLength > MAX_HEADER_BYTES) {
    throw tcError('TC_ERR_FORMAT_HEADER_TOO_LARGE', `header of ${headerByteLength} bytes exceeds ${MAX_HEADER_BYTES}`);
  }
  const header = Buffer.alloc(8 + headerByteLength, 0x20);
  header.writeBigUInt64LE(BigInt(headerByteLength), 0);
  json.copy(header, 8);
  return { header, tensors: placed, dataByteLength: cursor };
}

/**
 * Streams one safetensors file: header first, then data in order through {@link write}; {@link commit}
 * renames the temporary file into place, {@link abort} removes it. Nothing appears at `path` unless complete.
 *
 * @example
 * const w = await SafetensorsFileWriter.create('out.safetensors', layout);
 * await w.write(bytes); await w.commit();
 */
export class SafetensorsFileWriter {
  private written = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly tempPath: string,
    private readonly handle: FileHandle,
    readonly layout: SafetensorsLayout,
  ) {}

  /** Opens a temporary file beside `path` and writes the header. */
  static async create(path: string, layout: SafetensorsLayout): Promise<SafetensorsFileWriter> {
    const tempPath = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    let handle: FileHandle;
    try {
      handle = await open(tempPath, 'wx', 0o644);
    } catch (error) {
      throw wrapIoError(error, 'cannot create output file', path);
    }
    const writer = new SafetensorsFileWriter(path, tempPath, handle, layout);
    try {
      await writer.writeRaw(layout.header, 0);
    } catch (error) {
      await writer.abort();
      throw error;
    }
    return writer;
  }

  /** Bytes of tensor data written so far. */
  get dataWritten(): number {
    return this.written;
  }

  /** Appends the next bytes of tensor data. */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.written + bytes.length > this.layout.dataByteLength) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `${this.path}: more data than the header declares`);
    }
    await this.writeRaw(bytes, this.layout.header.length + this.written);
    this.written += bytes.length;
  }

  private async writeRaw(bytes: Uint8Array, position: number): Promise<void> {
    try {
      await writeFully(this.handle, bytes, position);
    } catch (error) {
      throw wrapIoError(error, 'cannot write output file', this.path);
    }
  }

  /** Checks that all data was written, flushes, and renames the file into place. */
  async commit(): Promise<void> {
    if (this.written !== this.layout.dataByteLength) {
      await this.abort();
      throw tcError('TC_ERR_INTERNAL', `${this.path}: ${this.written} of ${this.layout.dataByteLength} data bytes written`);
    }
    try {
      await this.handle.sync();
      await this.handle.close();
      this.closed = true;
      await rename(this.tempPath, this.path);
    } catch (error) {
      await this.abort();
      throw wrapIoError(error, 'cannot finish output file', this.path);
    }
  }

  /** Discards the temporary file. Safe to call more than once. */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.handle.close().catch(() => undefined);
    }
    await unlink(this.tempPath).catch(() => undefined);
  }
}

/** A tensor with its bytes, for {@link serializeSafetensors} and {@link saveSafetensors}. */
export interface TensorWithData extends TensorDescriptor {
  readonly data: Uint8Array;
}

/**
 * Serializes tensors into one Buffer (for small files; use {@link saveSafetensors} for large ones).
 *
 * @example const bytes = serializeSafetensors([{ name: 'x', dtype: 'U8', shape: [2], data: new Uint8Array([1, 2]) }]);
 */
export function serializeSafetensors(tensors: readonly TensorWithData[], options: PlanOptions = {}): Buffer {
  const layout = planSafetensors(tensors, options);
  const out = Buffer.allocUnsafe(layout.header.length + layout.dataByteLength);
  layout.header.copy(out, 0);
  const byName = new Map(tensors.map((t) => [t.name, t.data]));
  for (const t of layout.tensors) copyTensorData(byName.get(t.name)!, t, out, layout.header.length);
  return out;
}

function copyTensorData(data: Uint8Array, t: { name: string; begin: number; end: number }, out: Uint8Array, base: number): void {
  if (data.length !== t.end - t.begin) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `tensor '${t.name}' has ${data.length} bytes but its shape needs ${t.end - t.begin}`);
  }
  out.set(data, base + t.begin);
}

/**
 * Writes tensors to `path` atomically (temporary file + rename). Tensor data may exceed 2 GiB and the
 * file 4 GiB: each tensor is written from its own buffer.
 */
export async function saveSafetensors(path: string, tensors: readonly TensorWithData[], options: PlanOptions = {}): Promise<void> {
  const layout = planSafetensors(tensors, options);
  const byName = new Map(tensors.map((t) => [t.name, t.data]));
  const writer = await SafetensorsFileWriter.create(path, layout);
  try {
    for (const t of layout.tensors) {
      const data = byName.get(t.name)!;
      if (data.length !== t.end - t.begin) {
        throw tcError('TC_ERR_INVALID_ARGUMENT', `tensor '${t.name}' has ${data.length} bytes but its shape needs ${t.end - t.begin}`);
      }
      await writer.write(data);
    }
  } catch (error) {
    await writer.abort();
    throw error;
  }
  await writer.commit();
}

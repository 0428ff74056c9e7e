// A ByteSource over files: the canonical byte space is a list of extents, each a range of some shard
// file. Positional reads only (no shared file position), handles opened once, every read below 2^31 bytes.

import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { tcError, wrapIoError } from '../core/errors.js';
import type { CanonicalIndex } from '../layout/canonical-index.js';
import type { ByteSource } from './byte-source.js';
import { gatherFileNative } from './gather-kernel.js';

/** Part of the byte space that lives in one file. */
export interface FileExtent {
  /** Offset in the byte space. */
  readonly offset: number;
  readonly length: number;
  readonly path: string;
  /** Offset inside the file. */
  readonly position: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Appends `e` to `list`, lengthening the last extent instead when `e` continues it in the same file. */
function appendExtent(list: Mutable<FileExtent>[], e: FileExtent): void {
  if (e.length === 0) return;
  const last = list[list.length - 1];
  if (last !== undefined && last.path === e.path && last.offset + last.length === e.offset && last.position + last.length === e.position) {
    last.length += e.length;
  } else list.push({ ...e });
}

/** Largest single read (Node rejects 2^31 and above). */
export const MAX_READ_BYTES = 1 << 30;

/**
 * Canonical bytes read from files in place.
 *
 * @example const source = FileSource.fromIndex(modelDir, index); try { ... } finally { await source.close(); }
 */
export class FileSource implements ByteSource {
  readonly byteLength: number;
  private readonly extents: readonly FileExtent[];
  private readonly handles = new Map<string, Promise<FileHandle>>();
  private closed = false;

  constructor(extents: readonly FileExtent[]) {
    const sorted = [...extents].sort((a, b) => a.offset - b.offset);
    // Extents that continue each other in the same file become one: a header of 1e6 tiny tensors laid out
    // in canonical order reads as one range instead of 1e6 one-byte reads.
    const merged: Mutable<FileExtent>[] = [];
    let at = 0;
    for (const e of sorted) {
      if (e.length === 0) continue;
      if (e.offset !== at) throw tcError('TC_ERR_INTERNAL', `file extents leave a gap or overlap at ${at}`);
      at += e.length;
      appendExtent(merged, e);
    }
    this.extents = merged;
    this.byteLength = at;
  }

  /** The byte space of a canonical index whose shard files lie under `root`. */
  static fromIndex(root: string, index: CanonicalIndex): FileSource {
    // Tensors come in canonical (offset) order: merge neighbours here, so a huge index builds a short list.
    const paths = index.shards.map((s) => join(root, s.file));
    const extents: Mutable<FileExtent>[] = [];
    for (const t of index.tensors) {
      appendExtent(extents, { offset: t.offset, length: t.byteLength, path: paths[t.shard]!, position: t.filePosition });
    }
    return new FileSource(extents);
  }

  /** A whole file (or `[position, position + length)` of it) as a byte space. */
  static fromFile(path: string, length: number, position = 0): FileSource {
    return new FileSource([{ offset: 0, length, path, position }]);
  }

  private handle(path: string): Promise<FileHandle> {
    if (this.closed) return Promise.reject(tcError('TC_ERR_INVALID_ARGUMENT', 'FileSource is closed'));
    let h = this.handles.get(path);
    if (h === undefined) {
      h = open(path, 'r').catch((error: unknown) => {
        this.handles.delete(path);
        throw wrapIoError(error, 'cannot open source file', path);
      });
      this.handles.set(path, h);
    }
    return h;
  }

  private extentIndex(offset: number): number {
    let lo = 0;
    let hi = this.extents.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.extents[mid]!.offset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  async read(offset: number, dest: Uint8Array): Promise<number> {
    if (offset < 0 || offset > this.byteLength) {
      throw tcError('TC_ERR_SOURCE_RANGE', `offset ${offset} is outside the source of ${this.byteLength} bytes`);
    }
    let done = 0;
    for (let i = this.extentIndex(offset); done < dest.length && i < this.extents.length; i++) {
      const e = this.extents[i]!;
      const from = offset + done - e.offset;
      const want = Math.min(e.length - from, dest.length - done);
      const got = await this.readFile(e.path, e.position + from, dest.subarray(done, done + want));
      done += got;
      if (got < want) break;
    }
    return done;
  }

  private async readFile(path: string, position: number, dest: Uint8Array): Promise<number> {
    const fh = await this.handle(path);
    let done = 0;
    try {
      while (done < dest.length) {
        const n = Math.min(dest.length - done, MAX_READ_BYTES);
        const { bytesRead } = await fh.read(dest, done, n, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (error) {
      throw wrapIoError(error, 'cannot read source file', path);
    }
    return done;
  }

  async readRows(offset: number, rowLength: number, stride: number, rows: number, dest: Uint8Array): Promise<boolean> {
    if (gatherFileNative === undefined || rows < 1) return false;
    const i = this.extentIndex(offset);
    const e = this.extents[i]!;
    const span = (rows - 1) * stride + rowLength;
    if (offset < e.offset || offset + span > e.offset + e.length) return false;
    const fh = await this.handle(e.path);
    try {
      await gatherFileNative(fh.fd, e.position + offset - e.offset, rowLength, stride, rows, dest, 0);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'TC_ERR_SHORT_READ') {
        throw tcError('TC_ERR_SHORT_READ', `${e.path}: file ends before the rows at offset ${offset} (truncated?)`, {
          cause: error,
          details: { offset },
        });
      }
      throw tcError('TC_ERR_IO', `${e.path}: ${(error as Error).message}`, { cause: error, details: { path: e.path } });
    }
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    const hs = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(hs.map(async (h) => (await h.catch(() => undefined))?.close()));
  }
}

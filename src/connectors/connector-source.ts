// A ByteSource over the canonical byte space of a model kept in a connector: canonical offsets map to
// (object key, position) extents as FileSource maps them to files; every read passes the object's etag, so
// an object rewritten since it was indexed fails with TC_ERR_SOURCE_CHANGED instead of mixing versions.
// Extents that continue each other in one object are merged, so a range is as few ranged reads as the
// objects allow; reads run concurrently under one bound, and the bytes fetched are counted.

import { allSettledOrThrow, Limiter } from '../core/async.js';
import { tcError } from '../core/errors.js';
import type { CanonicalIndex } from '../layout/canonical-index.js';
import type { ByteSource } from '../bytes/byte-source.js';
import type { Connector } from './connector.js';

/** Part of the byte space that lives in one object. */
export interface ConnectorExtent {
  /** Offset in the byte space. */
  readonly offset: number;
  readonly length: number;
  readonly key: string;
  /** Offset inside the object. */
  readonly position: number;
  /** The object's etag when it was indexed. */
  readonly etag: string;
}

/** Options of a {@link ConnectorSource}. */
export interface ConnectorSourceOptions {
  /** Ranged reads in flight at once (default 32). */
  readonly concurrency?: number;
  /**
   * Rows of a strided read (a TP slice along dim 1) whose gaps are at most this many bytes are fetched as
   * one span, gaps included; otherwise row by row (default 0).
   */
  readonly maxGapBytes?: number;
  /** ... or whose gaps are at most this fraction of a row (default 0.1: at most 10% more bytes). */
  readonly maxGapRatio?: number;
  /** Hears about every ranged read: its bytes. */
  readonly onRead?: (bytes: number) => void;
  /** Close the connector with the source (default true). */
  readonly ownsConnector?: boolean;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Appends `e`, lengthening the last extent instead when `e` continues it in the same object. */
function appendExtent(list: Mutable<ConnectorExtent>[], e: ConnectorExtent): void {
  if (e.length === 0) return;
  const last = list[list.length - 1];
  if (last !== undefined && last.key === e.key && last.offset + last.length === e.offset && last.position + last.length === e.position) {
    last.length += e.length;
  } else list.push({ ...e });
}

/**
 * Canonical bytes read from a connector.
 *
 * @example
 * const source = ConnectorSource.fromIndex(connector, index, shards.map((s) => s.etag));
 * await new Materializer().run(program, source, out);
 */
export class ConnectorSource implements ByteSource {
  readonly byteLength: number;
  /** Bytes fetched from the connector so far. */
  bytesRead = 0;
  /** Ranged reads issued so far. */
  requests = 0;
  private readonly extents: readonly ConnectorExtent[];
  private readonly limiter: Limiter;
  private closed = false;

  constructor(
    /** The connector the bytes come from (also for whole-object reads: pushing a lazy artifact elsewhere). */
    readonly connector: Connector,
    extents: readonly ConnectorExtent[],
    private readonly options: ConnectorSourceOptions = {},
  ) {
    const merged: Mutable<ConnectorExtent>[] = [];
    let at = 0;
    for (const e of [...extents].sort((a, b) => a.offset - b.offset)) {
      if (e.length === 0) continue;
      if (e.offset !== at) throw tcError('TC_ERR_INTERNAL', `connector extents leave a gap or overlap at ${at}`);
      at += e.length;
      appendExtent(merged, e);
    }
    this.extents = merged;
    this.byteLength = at;
    this.limiter = new Limiter(Math.max(1, options.concurrency ?? 32));
  }

  /**
   * The byte space of a canonical index whose shards are objects of `connector` (`index.shards[i].file` is
   * the key), each expected at `etags[i]`.
   */
  static fromIndex(
    connector: Connector,
    index: CanonicalIndex,
    etags: readonly string[],
    options?: ConnectorSourceOptions,
  ): ConnectorSource {
    if (etags.length !== index.shards.length) throw tcError('TC_ERR_INTERNAL', `${index.shards.length} shards but ${etags.length} etags`);
    const extents: Mutable<ConnectorExtent>[] = [];
    for (const t of index.tensors) {
      appendExtent(extents, {
        offset: t.offset,
        length: t.byteLength,
        key: index.shards[t.shard]!.file,
        position: t.filePosition,
        etag: etags[t.shard]!,
      });
    }
    return new ConnectorSource(connector, extents, options);
  }

  /** The connector's redacted URL. */
  get displayUrl(): string {
    return this.connector.displayUrl;
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

  /** One ranged read of `dest.length` bytes at `position` of `e`'s object, under the bound. */
  private fetch(e: ConnectorExtent, position: number, dest: Uint8Array): Promise<void> {
    return this.limiter.run(async () => {
      if (this.closed) throw tcError('TC_ERR_SHUTTING_DOWN', `${this.connector.displayUrl}: the source is closed`);
      this.requests++;
      await this.connector.readInto(e.key, position, dest, { etag: e.etag });
      this.bytesRead += dest.length;
      this.options.onRead?.(dest.length);
    });
  }

  /** Reads `[offset, offset + dest.length)` (clipped at the end): one ranged read per extent touched, all at once. */
  async read(offset: number, dest: Uint8Array): Promise<number> {
    if (offset < 0 || offset > this.byteLength) {
      throw tcError('TC_ERR_SOURCE_RANGE', `offset ${offset} is outside the source of ${this.byteLength} bytes`);
    }
    const want = Math.min(dest.length, this.byteLength - offset);
    const reads: Promise<void>[] = [];
    let done = 0;
    for (let i = this.extentIndex(offset); done < want && i < this.extents.length; i++) {
      const e = this.extents[i]!;
      const from = offset + done - e.offset;
      const n = Math.min(e.length - from, want - done);
      reads.push(this.fetch(e, e.position + from, dest.subarray(done, done + n)));
      done += n;
    }
    // Every read finishes before an error is thrown: nothing writes into `dest` afterwards.
    await allSettledOrThrow(reads);
    return done;
  }

  /**
   * Rows `stride` apart: fetched row by row (only the rows' bytes move) unless the gaps are small enough to
   * read through (then false: the executor reads the span as one block and packs it).
   */
  async readRows(offset: number, rowLength: number, stride: number, rows: number, dest: Uint8Array): Promise<boolean> {
    const gap = stride - rowLength;
    if (rows < 2 || gap <= (this.options.maxGapBytes ?? 0) || gap <= rowLength * (this.options.maxGapRatio ?? 0.1)) return false;
    const span = (rows - 1) * stride + rowLength;
    const e = this.extents[this.extentIndex(offset)]!;
    if (offset < e.offset || offset + span > e.offset + e.length) return false;
    const reads: Promise<void>[] = [];
    for (let r = 0; r < rows; r++) {
      reads.push(this.fetch(e, e.position + offset - e.offset + r * stride, dest.subarray(r * rowLength, (r + 1) * rowLength)));
    }
    await allSettledOrThrow(reads);
    return true;
  }

  /** Closes the connector (when the source owns it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.options.ownsConnector ?? true) await this.connector.close();
  }
}

// One object's bytes and facts: its tier's storage (one Buffer, an shm segment file or a disk file), the
// version that fences it, and the life state reads and frees agree on (pending -> live -> dying -> freed).

import { open, stat, unlink } from 'node:fs/promises';
import { crc32c, crc32cAsync } from '../../bytes/crc32c.js';
import { tcError, wrapIoError } from '../../core/errors.js';
import type { Namespace } from './namespaces.js';
import type { ObjectMeta, ObjectTier } from './object-store-api.js';

/** An shm segment file an object lives in (ShmSegment, or one from a pool). */
export interface ObjectSegment {
  readonly path: string;
  /** The file's bytes mapped (views are handed out); undefined: read and written through the file. */
  readonly buffer?: Uint8Array | undefined;
  close(): Promise<void>;
  /** Gives the segment back to its provider for reuse (or closes it when the provider keeps none). */
  recycle?(): Promise<void>;
}

/** Makes shm segment files for placement 'shm'. */
export interface ObjectSegmentProvider {
  create(bytes: number): Promise<ObjectSegment>;
  /** Bytes of idle segments kept for reuse (counted inside the object memory budget). */
  readonly idleBytes?: number;
  /** Drops idle segments until `bytes` were released; returns bytes released. */
  evictIdle?(bytes: number): number;
  /** Removes every idle segment and waits until their files are gone. */
  drainIdle?(): Promise<void>;
}

/** Where the bytes are. */
export type ObjectStorage =
  | { readonly tier: 'memory'; readonly buffer: Buffer }
  | { readonly tier: 'shm'; readonly segment: ObjectSegment }
  | { readonly tier: 'disk'; readonly path: string };

/**
 * `pending`: bytes landing, invisible; `live`: committed and visible; `dying`: deleted or replaced, bytes
 * kept while a chunk is being copied; `freed`: bytes gone; `lost`: committed in memory before a restart.
 */
export type BodyState = 'pending' | 'live' | 'dying' | 'freed' | 'lost';

/** Bytes read from a file per step of a CRC pass. */
const CRC_STEP_BYTES = 8 << 20;

/** An object's bytes and facts. */
export class ObjectBody {
  state: BodyState = 'pending';
  version = 0;
  crc = 0;
  createdAt = 0;
  expiresAt: number | null = null;
  /** Chunks handed out to reads and not yet sent: the bytes may not be freed while > 0. */
  copying = 0;
  /** False for disk objects recovered after a restart until a read checked their CRC. */
  crcChecked = true;
  /** That check, under way or done (shared by concurrent first reads). */
  verify: Promise<boolean> | undefined;
  storage: ObjectStorage | undefined;

  constructor(
    readonly key: string,
    readonly ns: Namespace,
    readonly size: number,
    readonly tier: ObjectTier,
  ) {}

  /** True when reads must stop (deleted, replaced, freed). */
  get fenced(): boolean {
    return this.state !== 'live';
  }

  /** The file holding the bytes (shm and disk tiers). */
  get path(): string | undefined {
    const s = this.storage;
    return s === undefined ? undefined : s.tier === 'shm' ? s.segment.path : s.tier === 'disk' ? s.path : undefined;
  }

  /** A view of `[offset, offset + length)` when the bytes are in memory (memory, mapped shm). */
  view(offset: number, length: number): Uint8Array | undefined {
    const s = this.storage;
    if (s?.tier === 'memory') return s.buffer.subarray(offset, offset + length);
    if (s?.tier === 'shm' && s.segment.buffer !== undefined) return s.segment.buffer.subarray(offset, offset + length);
    return undefined;
  }

  meta(): ObjectMeta {
    const base = {
      key: this.key,
      size: this.size,
      version: this.version,
      crc: this.crc,
      tier: this.tier,
      createdAt: this.createdAt,
      expiresAt: this.expiresAt,
    };
    return this.state === 'lost' ? { ...base, lost: true } : base;
  }

  /** CRC32C of the whole object as stored now. @throws TC_ERR_IO */
  async computeCrc(): Promise<number> {
    const view = this.view(0, this.size);
    // A mapped segment file someone truncated (a client writes it) would kill the daemon with SIGBUS on the
    // first page past its end: check the file still holds the object before reading the mapping.
    if (view !== undefined && this.storage?.tier === 'shm') await checkSegmentHolds(this.storage.segment.path, this.size);
    if (view !== undefined) return view.length === 0 ? crc32c(view) : crc32cAsync(view);
    const path = this.path;
    if (path === undefined) return crc32c(new Uint8Array(0));
    return fileCrc(path, this.size);
  }

  /** Releases the storage (never throws; files are removed). */
  async release(): Promise<void> {
    const s = this.storage;
    this.storage = undefined;
    if (s?.tier === 'shm') await s.segment.close();
    else if (s?.tier === 'disk') await unlink(s.path).catch(() => undefined);
  }
}

/** CRC32C of the first `size` bytes of a file. @throws TC_ERR_IO, TC_ERR_NOT_FOUND */
export async function fileCrc(path: string, size: number): Promise<number> {
  const fh = await open(path, 'r').catch((error: unknown) => {
    throw wrapIoError(error, 'cannot read an object file', path);
  });
  try {
    const buf = Buffer.allocUnsafe(Math.min(CRC_STEP_BYTES, Math.max(size, 1)));
    let crc = 0;
    for (let at = 0; at < size;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - at), at);
      if (bytesRead === 0) throw wrapIoError(new Error(`file ends at ${at} of ${size} bytes`), 'object file is short', path);
      crc = crc32c(buf.subarray(0, bytesRead), crc);
      at += bytesRead;
    }
    return size === 0 ? crc32c(new Uint8Array(0)) : crc;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * Checks a mapped segment file still holds `size` bytes before its mapping is read (a page past the end of a
 * truncated file is a SIGBUS).
 *
 * @throws TC_ERR_SHORT_READ when the segment file at `path` is shorter than `size` (truncated), TC_ERR_IO
 */
export async function checkSegmentHolds(path: string, size: number): Promise<void> {
  const st = await stat(path).catch((error: unknown) => {
    throw wrapIoError(error, 'cannot stat an object segment file', path);
  });
  if (st.size < size)
    throw tcError(
      'TC_ERR_SHORT_READ',
      `object segment file ${path} holds ${st.size} bytes, fewer than the object's ${size}: it was truncated`,
      {
        details: { path, bytes: st.size, expected: size },
      },
    );
}

// One file on tmpfs that holds (or will hold) a shared-memory replica's bytes. It stays open for its whole
// life and, with the native addon, mapped: a build writes into pages already in the daemon's page tables,
// and a segment that held one replica can hold the next without the kernel allocating and zeroing its pages
// again (the cost that made first shm loads slow: a fault per fresh 4 KiB page).

import { fstatSync, statSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { native } from '../bytes/native.js';
import { tcError, wrapIoError } from '../core/errors.js';

/** Bytes of one mapping window: a Buffer over it stays below Node's 4 GiB cap (a multiple of the page size). */
export const SEGMENT_WINDOW_BYTES = 1 << 30;

/** Zeros written by the fallback prefault (no addon): 16 MiB at a time. */
const ZERO_WRITE_BYTES = 16 << 20;
/** Page tables filled per step of a prefault (a few ms of the mmap lock each). */
const POPULATE_STEP_BYTES = 16 << 20;

/**
 * A segment file. Sizes change only through {@link resize}; the file is removed by {@link close}.
 *
 * @example const seg = await ShmSegment.create(path, bytes); try { ...write seg.windows()... } finally { await seg.close(); }
 */
export class ShmSegment {
  private maps: ArrayBuffer[] = [];
  /** The last operation under way: resize, rename, prefault and close run one after another. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private currentPath: string,
    private readonly fh: FileHandle,
    private size: number,
  ) {}

  /**
   * Creates the file (it must not exist), `bytes` long, and maps it when the addon is there. Its pages are
   * allocated as they are first written, or all at once by {@link prefault}.
   *
   * @throws TC_ERR_IO, TC_ERR_NO_SPACE
   */
  static async create(path: string, bytes: number): Promise<ShmSegment> {
    const fh = await open(path, 'wx+', 0o600).catch((error: unknown) => {
      throw wrapIoError(error, 'cannot create a shm segment', path);
    });
    const seg = new ShmSegment(path, fh, 0);
    try {
      await seg.resize(bytes);
      return seg;
    } catch (error) {
      await seg.close();
      throw error;
    }
  }

  get path(): string {
    return this.currentPath;
  }

  /** Bytes of the file. */
  get bytes(): number {
    return this.size;
  }

  /** True when {@link windows} are views of the file's pages (the addon is there). */
  get mapped(): boolean {
    return this.maps.length > 0;
  }

  /** The file's bytes as Buffers of {@link SEGMENT_WINDOW_BYTES} (the last shorter); empty when not mapped. */
  windows(): Buffer[] {
    // A mapping may reach past the end of a shrunk file: views stop at the end (past it, a touch is fatal).
    return this.maps.map((m, i) => Buffer.from(m, 0, Math.min(m.byteLength, this.size - i * SEGMENT_WINDOW_BYTES)));
  }

  /** The open file (positional writes when not mapped). */
  get file(): FileHandle {
    return this.fh;
  }

  /**
   * Sets the file's length. Shrinking gives the tail's pages back to the kernel (no byte of a former,
   * longer content survives past the new end); {@link bytes} and {@link windows} reflect it at once, and
   * the head may be written while the kernel frees the tail. Growing adds pages allocated on first write;
   * pages already mapped stay mapped either way (no page-table work is redone).
   *
   * @throws TC_ERR_IO, TC_ERR_NO_SPACE
   */
  resize(bytes: number): Promise<void> {
    if (bytes < this.size) {
      this.size = bytes;
      const keep = Math.ceil(bytes / SEGMENT_WINDOW_BYTES);
      for (const m of this.maps.splice(keep)) native?.unmap(m);
      return this.serial(() => this.fh.truncate(bytes)).catch((error: unknown) => {
        throw segmentError(error, 'cannot shrink a shm segment', this.currentPath);
      });
    }
    return this.serial(async () => {
      try {
        if (bytes !== this.size) await this.fh.truncate(bytes);
        this.size = bytes;
        if (native === undefined) return;
        for (let i = 0; i * SEGMENT_WINDOW_BYTES < bytes; i++) {
          const want = Math.min(SEGMENT_WINDOW_BYTES, bytes - i * SEGMENT_WINDOW_BYTES);
          const have = this.maps[i];
          if (have === undefined) this.maps.push(native.mapFile(this.fh.fd, i * SEGMENT_WINDOW_BYTES, want, false));
          else if (have.byteLength < want) this.maps[i] = native.remap(have, want);
        }
      } catch (error) {
        throw segmentError(error, 'cannot grow a shm segment', this.currentPath);
      }
    });
  }

  /** Gives the file another name in the same file system (pages and mapping stay). */
  moveTo(path: string): Promise<void> {
    return this.serial(async () => {
      await rename(this.currentPath, path).catch((error: unknown) => {
        throw wrapIoError(error, 'cannot rename a shm segment', this.currentPath);
      });
      this.currentPath = path;
    });
  }

  /**
   * Allocates every page of the file now and fills the mapping's page tables, so the next build only
   * overwrites. With the addon, pages are allocated on a thread of its own (at the lowest priority when
   * `lowPriority`: it fills a reserve and yields the cores to loads under way), then mapped on the libuv pool
   * in short steps (each holds the process's mmap lock, which other work in the daemon needs too); without
   * the addon, zeros are written.
   *
   * @throws TC_ERR_NO_SPACE when tmpfs is full; TC_ERR_IO
   */
  prefault(lowPriority: boolean): Promise<void> {
    return this.serial(async () => {
      try {
        if (native !== undefined && this.mapped) {
          await native.allocate(this.fh.fd, 0, this.size, lowPriority);
          for (const map of this.maps) {
            const length = Math.min(map.byteLength, this.size - this.maps.indexOf(map) * SEGMENT_WINDOW_BYTES);
            for (let at = 0; at < length; at += POPULATE_STEP_BYTES)
              await native.populate(map, at, Math.min(POPULATE_STEP_BYTES, length - at));
          }
          return;
        }
        const zeros = Buffer.alloc(Math.min(ZERO_WRITE_BYTES, this.size));
        for (let at = 0; at < this.size; at += zeros.length) await this.fh.write(zeros, 0, Math.min(zeros.length, this.size - at), at);
      } catch (error) {
        throw segmentError(error, 'cannot allocate a shm segment', this.currentPath);
      }
    });
  }

  /**
   * True when the file is still what this segment made it: the same file under its name, with its length
   * (someone with the daemon's rights may have removed, replaced or truncated it; writing into a mapping
   * past a truncated end would kill the process).
   */
  intact(): boolean {
    try {
      const own = fstatSync(this.fh.fd);
      const named = statSync(this.currentPath);
      return own.nlink >= 1 && own.size === this.size && named.ino === own.ino && named.dev === own.dev;
    } catch {
      return false;
    }
  }

  /**
   * Unmaps, empties, closes and removes the file, after the operations under way. Never throws. Emptied
   * first: a client keeps a lease file open and mapped for a while after its load, which would otherwise
   * hold all of its pages on tmpfs, outside the budget, after the daemon freed it.
   */
  close(): Promise<void> {
    return this.serial(async () => {
      this.unmap();
      await this.fh.truncate(0).catch(() => undefined);
      await this.fh.close().catch(() => undefined);
      await unlink(this.currentPath).catch(() => undefined);
    }).catch(() => undefined);
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.tail.then(op, op);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private unmap(): void {
    for (const m of this.maps.splice(0)) native?.unmap(m);
  }
}

/** A coded error from the addon (it sets `code`) or a system error, as a TensorcastError. */
function segmentError(error: unknown, what: string, path: string): Error {
  const code = (error as { code?: unknown }).code;
  if (code === 'TC_ERR_NO_SPACE' || code === 'TC_ERR_IO')
    return tcError(code, `${what}: ${path}: ${(error as Error).message}`, { cause: error, details: { path } });
  return wrapIoError(error, what, path);
}

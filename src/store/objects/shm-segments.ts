// The default segment provider of placement 'shm': one ShmSegment file per object in the daemon's shm
// folder, mapped when the addon is there (reads and writes are then views of its pages).

import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { wrapIoError } from '../../core/errors.js';
import { ShmSegment } from '../shm-segment.js';
import type { ObjectSegment, ObjectSegmentProvider } from './object-body.js';

/** Names of object segment files (only these are removed at start). */
const SEGMENT_FILE = /^object-[0-9a-f]{24}\.shm$/;

/**
 * Object segments under `dir`. Segments of freed objects are kept idle for reuse (their tmpfs pages stay
 * allocated and mapped: the next put of the same size writes without page faults), at most `maxIdleBytes`
 * (oldest dropped first); the object store counts {@link idleBytes} inside its memory budget and calls
 * {@link evictIdle} when a put needs that room.
 *
 * @example const shm = new ShmObjectSegments('/dev/shm/tensorcast'); await shm.init(); new ObjectStore({ ..., shm });
 */
export class ShmObjectSegments implements ObjectSegmentProvider {
  private readonly idle: ShmSegment[] = [];
  private idleTotal = 0;
  private readonly closing = new Set<Promise<void>>();

  constructor(
    readonly dir: string,
    /** Most bytes of idle segments kept for reuse (0: none; segments of freed objects are removed). */
    private readonly maxIdleBytes = 0,
  ) {}

  /** Bytes of idle segments kept for reuse. */
  get idleBytes(): number {
    return this.idleTotal;
  }

  /** Removes idle segments (oldest first) until `bytes` were released or none is left; returns bytes released. */
  evictIdle(bytes: number): number {
    let released = 0;
    while (released < bytes && this.idle.length > 0) {
      const seg = this.idle.shift()!;
      this.idleTotal -= seg.bytes;
      released += seg.bytes;
      const p = seg.close().catch(() => undefined);
      this.closing.add(p);
      void p.finally(() => this.closing.delete(p));
    }
    return released;
  }

  /** Removes every idle segment and waits until their files are gone. */
  async drainIdle(): Promise<void> {
    this.evictIdle(this.idleTotal);
    while (this.closing.size > 0) await Promise.all([...this.closing]);
  }

  /** An idle segment of exactly `bytes`, renamed to a fresh object name (old paths no longer open it), or undefined. */
  async takeIdle(bytes: number): Promise<ObjectSegment | undefined> {
    const at = bytes === 0 ? -1 : this.idle.findIndex((s) => s.bytes === bytes);
    if (at < 0) return undefined;
    const [seg] = this.idle.splice(at, 1);
    this.idleTotal -= bytes;
    try {
      await seg!.moveTo(join(this.dir, `object-${randomBytes(12).toString('hex')}.shm`));
      // A file a client truncated is not reused: its mapping would fault (SIGBUS) past the file's end.
      if ((await stat(seg!.path)).size < bytes) throw new Error('truncated');
    } catch {
      await seg!.close();
      return undefined;
    }
    return this.wrap(seg!);
  }

  /**
   * An object segment over `seg`: `recycle` keeps it idle for reuse when there is room (the object store
   * calls it only for segments whose bytes all landed: no client writes into them any more).
   */
  wrap(seg: ShmSegment): ObjectSegment {
    const windows = seg.windows();
    // One window: a view of all of it; past one window (1 GiB) reads and writes go through the file.
    const buffer = seg.bytes === 0 ? Buffer.alloc(0) : seg.mapped && windows.length === 1 ? windows[0] : undefined;
    return {
      path: seg.path,
      buffer,
      close: () => seg.close(),
      recycle: () => {
        if (seg.bytes === 0 || seg.bytes > this.maxIdleBytes || buffer === undefined) return seg.close();
        this.evictIdle(this.idleTotal + seg.bytes - this.maxIdleBytes);
        this.idle.push(seg);
        this.idleTotal += seg.bytes;
        return Promise.resolve();
      },
    };
  }

  /** Creates the folder and removes object segments a former daemon left (their objects are lost). */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
      throw wrapIoError(error, 'cannot create the object shm folder', this.dir);
    });
    for (const name of await readdir(this.dir)) if (SEGMENT_FILE.test(name)) await unlink(join(this.dir, name)).catch(() => undefined);
  }

  /** A new segment file of `bytes`. @throws TC_ERR_NO_SPACE, TC_ERR_IO */
  async create(bytes: number): Promise<ObjectSegment> {
    const reused = await this.takeIdle(bytes);
    if (reused !== undefined) return reused;
    return this.wrap(await ShmSegment.create(join(this.dir, `object-${randomBytes(12).toString('hex')}.shm`), bytes));
  }
}

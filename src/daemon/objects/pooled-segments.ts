// Segment files for same-host object puts, taken from the daemon's pool of pre-faulted shm segments when it
// has one that fits (its pages are allocated and mapped: the client's copy into it only overwrites, no page
// faults), else created fresh. A claimed segment leaves the pool (and the replica budget its idle bytes
// counted under) for good: its bytes count under the object budget, and it is removed when its object goes.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { ShmSegmentPool } from '../../store/shm-segment-pool.js';
import type { ObjectSegment, ObjectSegmentProvider } from '../../store/objects/object-body.js';
import type { ShmObjectSegments } from '../../store/objects/shm-segments.js';

/**
 * An object segment provider drawing on a {@link ShmSegmentPool} first.
 *
 * @example new ObjectStore({ ..., shm: new PooledObjectSegments(views.segments, new ShmObjectSegments(dir)) });
 */
export class PooledObjectSegments implements ObjectSegmentProvider {
  constructor(
    private readonly pool: ShmSegmentPool,
    private readonly fresh: ShmObjectSegments,
  ) {}

  /** Creates the folder and removes segments a former daemon left (as {@link ShmObjectSegments.init}). */
  init(): Promise<void> {
    return this.fresh.init();
  }

  /** Bytes of freed object segments kept for reuse (see {@link ShmObjectSegments}). */
  get idleBytes(): number {
    return this.fresh.idleBytes;
  }

  /** Drops idle object segments (see {@link ShmObjectSegments.evictIdle}). */
  evictIdle(bytes: number): number {
    return this.fresh.evictIdle(bytes);
  }

  /** Removes every idle object segment (see {@link ShmObjectSegments.drainIdle}). */
  drainIdle(): Promise<void> {
    return this.fresh.drainIdle();
  }

  /**
   * A segment of exactly `bytes`: a freed object segment of that size first (its pages are resident), then a
   * pooled one when one fits, else a fresh one. @throws TC_ERR_NO_SPACE, TC_ERR_IO
   */
  async create(bytes: number): Promise<ObjectSegment> {
    const own = await this.fresh.takeIdle(bytes);
    if (own !== undefined) return own;
    const seg = bytes === 0 ? undefined : this.pool.claim(bytes);
    if (seg === undefined) return this.fresh.create(bytes);
    try {
      // Named like a fresh object segment, so a restart removes it as one.
      await seg.moveTo(join(this.fresh.dir, `object-${randomBytes(12).toString('hex')}.shm`));
      // A larger segment is cut to the object: none of its former content stays readable past the end.
      await seg.resize(bytes);
    } catch (error) {
      await seg.close();
      throw error;
    }
    return this.fresh.wrap(seg);
  }
}

// The default segment provider of placement 'shm': one ShmSegment file per object in the daemon's shm
// folder, mapped when the addon is there (reads and writes are then views of its pages).

import { mkdir, readdir, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { wrapIoError } from '../../core/errors.js';
import { ShmSegment } from '../shm-segment.js';
import type { ObjectSegment, ObjectSegmentProvider } from './object-body.js';

/** Names of object segment files (only these are removed at start). */
const SEGMENT_FILE = /^object-[0-9a-f]{24}\.shm$/;

/**
 * Object segments under `dir`.
 *
 * @example const shm = new ShmObjectSegments('/dev/shm/tensorcast'); await shm.init(); new ObjectStore({ ..., shm });
 */
export class ShmObjectSegments implements ObjectSegmentProvider {
  constructor(readonly dir: string) {}

  /** Creates the folder and removes object segments a former daemon left (their objects are lost). */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
      throw wrapIoError(error, 'cannot create the object shm folder', this.dir);
    });
    for (const name of await readdir(this.dir)) if (SEGMENT_FILE.test(name)) await unlink(join(this.dir, name)).catch(() => undefined);
  }

  /** A new segment file of `bytes`. @throws TC_ERR_NO_SPACE, TC_ERR_IO */
  async create(bytes: number): Promise<ObjectSegment> {
    const seg = await ShmSegment.create(join(this.dir, `object-${randomBytes(12).toString('hex')}.shm`), bytes);
    const windows = seg.windows();
    // One window: a view of all of it; past one window (1 GiB) reads and writes go through the file.
    const buffer = bytes === 0 ? Buffer.alloc(0) : seg.mapped && windows.length === 1 ? windows[0] : undefined;
    return { path: seg.path, buffer, close: () => seg.close() };
  }
}

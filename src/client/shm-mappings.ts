// Mappings of shm lease files a client keeps between loads: a view loaded again through a lease on the same
// replica (the same file) is copied out of pages already in this process's page tables, instead of read
// through the kernel page by page. A mapping is used only while its file is unchanged (same inode, same
// length), dropped once idle for a while (the daemon may free the file meanwhile, and a mapping would keep
// its pages alive) and when the client closes. Needs the native addon; without it there are no mappings.

import { stat, open, type FileHandle } from 'node:fs/promises';
import { native, type MappedFile } from '../bytes/native.js';
import { wrapIoError } from '../core/errors.js';

/** One kept mapping. */
export interface LeaseMapping {
  readonly path: string;
  readonly bytes: number;
  /** The addon's handle: read through `native.copyChunks`. */
  readonly handle: MappedFile;
}

interface Entry extends LeaseMapping {
  readonly file: FileHandle;
  readonly ino: number;
  readonly dev: number;
  users: number;
  lastUsed: number;
}

/** Options of {@link ShmMappings}. */
export interface ShmMappingsOptions {
  /** A mapping unused this long is dropped (ms, default 10 s). */
  readonly idleMs?: number;
  /** Most mappings kept (the least recently used goes first; default 8). */
  readonly maxMappings?: number;
}

/**
 * The mappings of one client.
 *
 * @example const m = await mappings.acquire(lease.path, lease.bytes); try { ...copyChunks(m.handle, ...)... } finally { mappings.release(m); }
 */
export class ShmMappings {
  private readonly entries = new Map<string, Entry>();
  private readonly idleMs: number;
  private readonly maxMappings: number;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: ShmMappingsOptions = {}) {
    this.idleMs = options.idleMs ?? 10_000;
    this.maxMappings = options.maxMappings ?? 8;
  }

  /** True when mappings can be made (the addon is there). */
  static get available(): boolean {
    return native !== undefined;
  }

  /** Mappings held now (tests). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * A mapping of the lease file at `path`, `bytes` long: the one kept when the file is still the same, else
   * a new one. Release it when the reads are done.
   *
   * @throws TC_ERR_NOT_FOUND, TC_ERR_IO when the file cannot be opened or mapped; TC_ERR_INTERNAL after close
   */
  async acquire(path: string, bytes: number): Promise<LeaseMapping> {
    const st = await stat(path).catch((error: unknown) => {
      throw wrapIoError(error, 'cannot open the shm lease file', path);
    });
    let entry = this.entries.get(path);
    if (entry !== undefined && (entry.ino !== st.ino || entry.dev !== st.dev || entry.bytes !== bytes)) {
      this.drop(entry);
      entry = undefined;
    }
    if (entry === undefined) entry = await this.map(path, bytes);
    entry.users++;
    entry.lastUsed = Date.now();
    // Most recently used last: the first entries are the ones to drop.
    this.entries.delete(path);
    this.entries.set(path, entry);
    this.trim();
    return entry;
  }

  /** Gives a mapping back (kept for the next load of the same file until idle). */
  release(mapping: LeaseMapping): void {
    const entry = mapping as Entry;
    entry.users--;
    entry.lastUsed = Date.now();
    if (this.closed || this.entries.get(entry.path) !== entry) {
      if (entry.users === 0) this.unmap(entry);
      return;
    }
    this.schedule();
  }

  /** Drops every mapping (those in use once their copies are done). */
  close(): void {
    this.closed = true;
    if (this.sweeper !== undefined) clearTimeout(this.sweeper);
    for (const entry of [...this.entries.values()]) this.drop(entry);
  }

  private async map(path: string, bytes: number): Promise<Entry> {
    const file = await open(path, 'r').catch((error: unknown) => {
      throw wrapIoError(error, 'cannot open the shm lease file', path);
    });
    try {
      const st = await file.stat();
      // A length the file lacks (it shrank) shows as TC_ERR_SHORT_READ on the copies, never as a crash.
      const handle = native!.mapRead(file.fd, bytes);
      const entry: Entry = { path, bytes, handle, file, ino: st.ino, dev: st.dev, users: 0, lastUsed: Date.now() };
      // Mapped while closing, or raced by another load of the same file: keep one.
      const other = this.entries.get(path);
      if (other !== undefined) this.drop(other);
      if (!this.closed) this.entries.set(path, entry);
      return entry;
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  /** Takes an entry out of the cache; unmapped now or when its last user releases it. */
  private drop(entry: Entry): void {
    if (this.entries.get(entry.path) === entry) this.entries.delete(entry.path);
    if (entry.users === 0) this.unmap(entry);
  }

  private unmap(entry: Entry): void {
    native!.unmapRead(entry.handle);
    void entry.file.close().catch(() => undefined);
  }

  /** Keeps at most maxMappings, dropping the least recently used idle ones. */
  private trim(): void {
    for (const entry of this.entries.values()) {
      if (this.entries.size <= this.maxMappings) return;
      if (entry.users === 0) this.drop(entry);
    }
  }

  private schedule(): void {
    if (this.sweeper !== undefined || this.closed) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      const cutoff = Date.now() - this.idleMs;
      for (const entry of [...this.entries.values()]) if (entry.users === 0 && entry.lastUsed <= cutoff) this.drop(entry);
      if (this.entries.size > 0) this.schedule();
    }, this.idleMs);
    this.sweeper.unref();
  }
}

// The file:// connector: a directory tree. Writes go to a temporary file in the target's directory, are
// fsynced and renamed over the target (atomic for readers: an open reader keeps the old inode). The etag
// is size, mtime (ns) and inode; reads are positional and compare the etag before and after, so an object
// rewritten or truncated in place during a read fails with TC_ERR_SOURCE_CHANGED instead of mixing bytes.

import type { BigIntStats, Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { mapLimit } from '../../core/async.js';
import { tcError, wrapIoError } from '../../core/errors.js';
import { compareUtf8 } from '../../core/strings.js';
import type { Connector, ObjectInfo, ReadOptions, WriteData, WriteOptions } from '../connector.js';
import { checkListPrefix, checkReadRange, objectNotFound, shortRead, sourceChanged } from '../connector-keys.js';
import { fileRoot, isTempName, objectPath, tempName } from './file-paths.js';

/** The most one fs.read or fs.write moves (below 2^31). */
const MAX_IO_BYTES = 1 << 30;
/** Stats a listing runs at once. */
const LIST_STAT_CONCURRENCY = 32;

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | undefined)?.code;
const etagOf = (s: BigIntStats): string => `${s.size.toString(36)}-${s.mtimeNs.toString(36)}-${s.ino.toString(36)}`;
const missing = (error: unknown): boolean => errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR';

const aborted = (where: string, op: string): Error => tcError('TC_ERR_ABORTED', `${where}: ${op} was aborted`);
const isAborted = (signal: AbortSignal | undefined): boolean => signal?.aborted === true;

/** Writes all of `bytes` at `position` of `fh`, in pieces below 2^31. */
async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(bytes.length - done, MAX_IO_BYTES), position + done);
    done += bytesWritten;
  }
}

/** Fsyncs a directory so that a rename in it survives a crash (best effort: not every filesystem allows it). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (fh === undefined) return;
  await fh.sync().catch(() => undefined);
  await fh.close();
}

/**
 * A directory seen as a connector.
 *
 * @example const c = await FileConnector.open('file:///var/models/llama');
 */
export class FileConnector implements Connector {
  readonly displayUrl: string;

  private constructor(private readonly root: string) {
    this.displayUrl = `file://${root}`;
  }

  /**
   * A connector on the directory of `url` (which need not exist yet: the first write creates it).
   *
   * @throws TC_ERR_INVALID_ARGUMENT for a malformed URL.
   */
  static open(url: string): Promise<FileConnector> {
    return Promise.resolve(new FileConnector(fileRoot(url)));
  }

  private noRoot(): Error {
    return tcError('TC_ERR_NOT_FOUND', `${this.displayUrl}: the directory ${this.root} does not exist`, {
      details: { connector: this.displayUrl, reason: 'no_such_directory' },
    });
  }

  /** TC_ERR_NOT_FOUND for a missing `key`: naming the root directory when that is what is missing. */
  private async notFound(key: string): Promise<Error> {
    const rootThere = await stat(this.root).then(
      () => true,
      (error: unknown) => !missing(error),
    );
    return rootThere ? objectNotFound(this.displayUrl, key) : this.noRoot();
  }

  /** @throws TC_ERR_NOT_FOUND when the root directory does not exist; TC_ERR_INVALID_ARGUMENT for a bad prefix. */
  async list(prefix = ''): Promise<ObjectInfo[]> {
    checkListPrefix(prefix);
    const rootStat = await stat(this.root).catch((error: unknown) => {
      if (missing(error)) throw this.noRoot();
      throw wrapIoError(error, `${this.displayUrl}: cannot list`, this.root);
    });
    if (!rootStat.isDirectory()) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `${this.displayUrl}: ${this.root} is not a directory`, {
        details: { connector: this.displayUrl },
      });
    }
    // Walk only below the deepest directory the prefix names in full.
    const cut = prefix.lastIndexOf('/');
    const startKey = cut < 0 ? '' : prefix.slice(0, cut + 1);
    const keys: string[] = [];
    await this.walk(startKey, prefix, keys);
    const infos = await mapLimit(keys, LIST_STAT_CONCURRENCY, async (key) => {
      try {
        const s = await stat(join(this.root, ...key.split('/')), { bigint: true });
        return s.isFile() ? { key, size: Number(s.size), etag: etagOf(s) } : undefined;
      } catch (error) {
        if (missing(error)) return undefined; // deleted while listing
        throw wrapIoError(error, `${this.displayUrl}: cannot stat`, key);
      }
    });
    return infos.filter((i): i is ObjectInfo => i !== undefined).sort((a, b) => compareUtf8(a.key, b.key));
  }

  /** Collects the keys of regular files (and symlinks to them) under `dirKey` that start with `prefix`. */
  private async walk(dirKey: string, prefix: string, out: string[]): Promise<void> {
    const dir = dirKey === '' ? this.root : join(this.root, ...dirKey.slice(0, -1).split('/'));
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (missing(error)) return;
      throw wrapIoError(error, `${this.displayUrl}: cannot list`, dir);
    }
    for (const entry of entries) {
      if (isTempName(entry.name)) continue;
      const key = dirKey + entry.name;
      if (entry.isDirectory()) {
        const sub = `${key}/`;
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) await this.walk(sub, prefix, out);
      } else if ((entry.isFile() || entry.isSymbolicLink()) && key.startsWith(prefix)) {
        out.push(key);
      }
    }
  }

  /** @throws TC_ERR_NOT_FOUND; TC_ERR_INVALID_ARGUMENT for a bad key. */
  async stat(key: string): Promise<ObjectInfo> {
    const path = objectPath(this.root, key);
    try {
      const s = await stat(path, { bigint: true });
      if (!s.isFile()) throw objectNotFound(this.displayUrl, key);
      return { key, size: Number(s.size), etag: etagOf(s) };
    } catch (error) {
      if (missing(error)) throw await this.notFound(key);
      throw wrapIoError(error, `${this.displayUrl}: cannot stat`, path);
    }
  }

  /**
   * Positional reads into `dest` (each below 2^31 bytes), with the file's etag checked before and after.
   *
   * @throws TC_ERR_NOT_FOUND; TC_ERR_SHORT_READ; TC_ERR_SOURCE_CHANGED; TC_ERR_IO.
   */
  async readInto(key: string, offset: number, dest: Uint8Array, options: ReadOptions = {}): Promise<void> {
    checkReadRange(offset, dest);
    const path = objectPath(this.root, key);
    const op = `read ${key}`;
    if (isAborted(options.signal)) throw aborted(this.displayUrl, op);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (error) {
      if (missing(error)) throw await this.notFound(key);
      throw wrapIoError(error, `${this.displayUrl}: cannot open`, path);
    }
    try {
      const before = await fh.stat({ bigint: true });
      if (!before.isFile()) throw objectNotFound(this.displayUrl, key);
      const etag = etagOf(before);
      if (options.etag !== undefined && options.etag !== etag) throw sourceChanged(this.displayUrl, key, options.etag, etag);
      const size = Number(before.size);
      if (offset + dest.length > size) throw shortRead(this.displayUrl, key, offset, dest.length, size);
      let done = 0;
      while (done < dest.length) {
        if (isAborted(options.signal)) throw aborted(this.displayUrl, op);
        const { bytesRead } = await fh.read(dest, done, Math.min(dest.length - done, MAX_IO_BYTES), offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      const after = etagOf(await fh.stat({ bigint: true }));
      if (after !== etag) throw sourceChanged(this.displayUrl, key, etag, after);
      if (done < dest.length) throw shortRead(this.displayUrl, key, offset, dest.length, offset + done);
    } catch (error) {
      throw wrapIoError(error, `${this.displayUrl}: cannot read`, path);
    } finally {
      await fh.close();
    }
  }

  /**
   * Writes a temporary file beside the target, fsyncs it, renames it over the target and fsyncs the
   * directory. Parent directories are created.
   *
   * @throws TC_ERR_INVALID_ARGUMENT for a bad key, a key whose path collides with a directory or file, or
   *   `options.size` differing from the bytes given; TC_ERR_NO_SPACE; TC_ERR_IO.
   */
  async write(key: string, data: WriteData, options: WriteOptions = {}): Promise<ObjectInfo> {
    const path = objectPath(this.root, key);
    const dir = dirname(path);
    const op = `write ${key}`;
    const collide = (error: unknown): Error =>
      errno(error) === 'EEXIST' || errno(error) === 'ENOTDIR' || errno(error) === 'EISDIR'
        ? tcError(
            'TC_ERR_INVALID_ARGUMENT',
            `${this.displayUrl}: cannot write '${key}': its path collides with an existing file or directory`,
            {
              details: { key, connector: this.displayUrl },
            },
          )
        : wrapIoError(error, `${this.displayUrl}: cannot write`, path);
    await mkdir(dir, { recursive: true }).catch((error: unknown) => {
      throw collide(error);
    });
    const tmp = join(dir, tempName());
    const fh = await open(tmp, 'wx', 0o644).catch((error: unknown) => {
      throw collide(error);
    });
    let closed = false;
    try {
      let size = 0;
      const pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = data instanceof Uint8Array ? [data] : data;
      for await (const piece of pieces) {
        if (isAborted(options.signal)) throw aborted(this.displayUrl, op);
        await writeAll(fh, piece, size);
        size += piece.length;
        options.onBytes?.(piece.length);
      }
      if (options.size !== undefined && options.size !== size) {
        throw tcError('TC_ERR_INVALID_ARGUMENT', `${this.displayUrl}: write '${key}': expected ${options.size} bytes, got ${size}`, {
          details: { key, expected: options.size, actual: size },
        });
      }
      await fh.sync();
      const s = await fh.stat({ bigint: true });
      await fh.close();
      closed = true;
      await rename(tmp, path);
      await syncDir(dir);
      return { key, size, etag: etagOf(s) };
    } catch (error) {
      if (!closed) await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw collide(error);
    }
  }

  /** Removes the file of `key`; nothing when there is none. */
  async delete(key: string): Promise<void> {
    const path = objectPath(this.root, key);
    try {
      await unlink(path);
    } catch (error) {
      if (missing(error) || errno(error) === 'EISDIR') return;
      throw wrapIoError(error, `${this.displayUrl}: cannot delete`, path);
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

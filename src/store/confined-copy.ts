// Copies a model from the daemon's host into staging without leaving the import roots: every file is
// opened first and then checked to be one whose real path lies under a root (through /proc/self/fd where
// Linux has it, else realpath with a device+inode comparison), and the bytes are copied from that opened
// file, so a symbolic link swapped between the check and the copy cannot redirect the read.

import { constants as fsConstants, createWriteStream } from 'node:fs';
import { copyFile, open, readdir, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import { basename, isAbsolute, join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { tcError, wrapIoError } from '../core/errors.js';
import { chooseShards } from '../format/model-files.js';

/** What {@link copyConfined} needs to know. */
export interface ConfinedCopyOptions {
  /** Real paths of the import roots (see {@link realRoots}). */
  readonly roots: readonly string[];
  /** Non-weight files larger than this are left out. */
  readonly maxExtraFileBytes: number;
}

/** The real paths of the roots that exist. */
export async function realRoots(roots: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of roots) {
    const real = await realpath(r).catch(() => undefined);
    if (real !== undefined) out.push(real);
  }
  return out;
}

/** True when `path` is `root` or lies below it (both real, absolute paths). */
export function isUnder(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Copies the model at `src` (a real path under a root: a .safetensors file or a model directory) into
 * `staging`: the index and other non-weight files first, then the shards the index (or the directory)
 * names. Symbolic links are followed only where they lead to a file under a root.
 *
 * @throws TC_ERR_FORBIDDEN naming the file that leads outside the roots; TC_ERR_NOT_FOUND; TC_ERR_IO
 */
export async function copyConfined(src: string, staging: string, opts: ConfinedCopyOptions): Promise<void> {
  const st = await stat(src).catch((e: unknown) => {
    throw wrapIoError(e, 'cannot open model', src);
  });
  if (st.isFile()) {
    await copyOne(src, join(staging, basename(src)), opts, Infinity);
    return;
  }
  if (!st.isDirectory()) throw tcError('TC_ERR_INVALID_ARGUMENT', `${src}: neither a file nor a directory`, { details: { path: src } });
  const names = (await readdir(src, { withFileTypes: true }))
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  const copied: string[] = [];
  for (const name of names.filter((n) => !n.endsWith('.safetensors'))) {
    const limit = name.endsWith('.safetensors.index.json') ? Infinity : opts.maxExtraFileBytes;
    if (await copyOne(join(src, name), join(staging, name), opts, limit)) copied.push(name);
  }
  // The shards are chosen from the copied index, exactly as the import will read it.
  const weights = names.filter((n) => n.endsWith('.safetensors'));
  const { shardNames } = chooseShards(staging, [...copied, ...weights].sort());
  for (const name of shardNames) {
    if (!(await copyOne(join(src, name), join(staging, name), opts, Infinity))) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `${join(src, name)}: not a regular file`, { details: { path: join(src, name) } });
    }
  }
}

/** Copies one regular file; false (nothing copied) for anything else or a file above `limit` bytes. */
async function copyOne(from: string, to: string, opts: ConfinedCopyOptions, limit: number): Promise<boolean> {
  const fh = await openConfined(from, opts.roots);
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > limit) return false;
    const viaProc = `/proc/self/fd/${fh.fd}`;
    if (await isOpenedFile(viaProc, st)) {
      // The kernel reopens the very file held by fh: copy_file_range / reflink speed, no path lookup.
      await copyFile(viaProc, to, fsConstants.COPYFILE_FICLONE);
    } else {
      await pipeline(fh.createReadStream({ start: 0, autoClose: false }), createWriteStream(to, { mode: 0o600 }));
    }
    return true;
  } catch (error) {
    throw wrapIoError(error, 'cannot copy model file', from);
  } finally {
    await fh.close();
  }
}

/**
 * Opens `path` for reading, then checks that the file opened lies under one of `roots`.
 *
 * @throws TC_ERR_FORBIDDEN when it does not (a symbolic link leading outside); TC_ERR_NOT_FOUND
 */
export async function openConfined(path: string, roots: readonly string[]): Promise<FileHandle> {
  // O_NONBLOCK: a FIFO planted under a root must not hang the import (it is refused below as not a file).
  const fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK).catch((e: unknown) => {
    throw wrapIoError(e, 'cannot open model file', path);
  });
  try {
    const opened = await openedPath(fh, path);
    if (opened === undefined || !roots.some((r) => isUnder(opened, r))) {
      throw tcError('TC_ERR_FORBIDDEN', `${path} leads outside the import roots (${roots.join(', ')}) through a symbolic link`, {
        details: { path },
      });
    }
    return fh;
  } catch (error) {
    await fh.close();
    throw error;
  }
}

/** The real path of the file `fh` holds, or undefined when it cannot be established. */
async function openedPath(fh: FileHandle, path: string): Promise<string | undefined> {
  const st = await fh.stat();
  const proc = await readlink(`/proc/self/fd/${fh.fd}`).catch(() => undefined);
  if (proc !== undefined && proc.startsWith('/') && (await isOpenedFile(proc, st))) return proc;
  // No /proc: the real path must name the same device and inode as the opened file.
  const real = await realpath(path).catch(() => undefined);
  return real !== undefined && (await isOpenedFile(real, st)) ? real : undefined;
}

async function isOpenedFile(path: string, opened: { dev: number; ino: number }): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  return st !== undefined && st.dev === opened.dev && st.ino === opened.ino;
}

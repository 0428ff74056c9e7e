// The data directory's exclusive lock and permissions: one daemon per data directory. The lock is a file
// created atomically (written whole under a temporary name, then hard-linked into place, which fails if
// it exists) holding the owner's pid and process start time; a lock whose process is gone is taken over
// under a takeover mutex.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tcError, wrapIoError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/** Name of the lock file inside the data directory. */
export const LOCK_FILE = 'daemon.lock';

/** A held lock; `release()` removes the lock file if it is still this process's. */
export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

/** What a lock file records. */
interface Owner {
  readonly pid: number;
  /** Start time of the process (Linux clock ticks since boot), or '' where /proc is not available. */
  readonly started: string;
}

/**
 * Creates the data directory if needed (mode 0700), takes its lock, then makes sure only this user can
 * read it (a directory with group or other access is tightened to 0700; one that cannot be tightened is
 * refused). Nothing else in the directory is touched before the lock is held.
 *
 * @throws TC_ERR_DATA_DIR_LOCKED when a live process holds the lock; TC_ERR_CONFIG when the directory's
 *   permissions cannot be tightened; TC_ERR_IO and others from the file system.
 * @example const lock = await lockDataDir('/var/lib/tensorcast', log); ...; await lock.release();
 */
export async function lockDataDir(dataDir: string, log: Logger): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 }).catch((e: unknown) => {
    throw wrapIoError(e, 'cannot create the data directory', dataDir);
  });
  const path = join(dataDir, LOCK_FILE);
  const me: Owner = { pid: process.pid, started: processStart(process.pid) };
  const content = `${me.pid} ${me.started}\n`;
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      if (await createLock(tmp, path, content)) break;
      const owner = await readOwner(path);
      if (owner !== undefined && isAlive(owner)) {
        throw tcError(
          'TC_ERR_DATA_DIR_LOCKED',
          `data directory ${dataDir} is in use by another tensorcast daemon (pid ${owner.pid}, lock ${path}): stop it or choose another --data-dir`,
          { details: { dataDir, pid: owner.pid } },
        );
      }
      if (attempt >= 3) throw tcError('TC_ERR_DATA_DIR_LOCKED', `data directory ${dataDir}: cannot take over the stale lock ${path}`);
      await takeOverStale(path, tmp, content, log);
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const release = async (): Promise<void> => {
    const owner = await readOwner(path);
    if (owner?.pid === me.pid && owner.started === me.started) await unlink(path).catch(() => undefined);
  };
  try {
    await tighten(dataDir, log);
  } catch (error) {
    await release();
    throw error;
  }
  return { path, release };
}

/** Creates the lock file whole; false when it exists. */
async function createLock(tmp: string, path: string, content: string): Promise<boolean> {
  try {
    await link(tmp, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') {
      throw wrapIoError(error, 'cannot create the lock file', path);
    }
  }
  // A file system without hard links: an exclusive create (its content lands a moment later).
  try {
    await writeFile(path, content, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw wrapIoError(error, 'cannot create the lock file', path);
  }
}

/**
 * Removes a stale lock so that the caller can create its own. Removal happens only under a takeover
 * mutex (`daemon.lock.takeover`, created exclusively like the lock) and only after re-reading the lock
 * under it, so two daemons taking over at once can never both end up holding the lock.
 */
async function takeOverStale(path: string, tmp: string, content: string, log: Logger): Promise<void> {
  const mutex = `${path}.takeover`;
  for (let i = 0; !(await createLock(tmp, mutex, content)); i++) {
    const holder = await readOwner(mutex);
    // A takeover takes milliseconds: a mutex whose process is gone (killed mid-takeover) is broken.
    if ((holder !== undefined && !isAlive(holder)) || i >= 100) await unlink(mutex).catch(() => undefined);
    else await new Promise((r) => setTimeout(r, 20));
  }
  try {
    const owner = await readOwner(path);
    if (owner !== undefined && isAlive(owner)) return;
    await unlink(path).catch(() => undefined);
    log.warn({ lock: path, stalePid: owner?.pid }, 'took over the lock of a daemon that is gone');
  } finally {
    await unlink(mutex).catch(() => undefined);
  }
}

async function readOwner(path: string): Promise<Owner | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^(\d+) ?(\S*)/.exec(text);
  return m === null ? undefined : { pid: Number(m[1]), started: m[2] ?? '' };
}

/** True when the lock's process runs (and, where /proc tells, is the same process, not a reused pid). */
function isAlive(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = processStart(owner.pid);
  return owner.started === '' || now === '' || now === owner.started;
}

/** Field 22 of /proc/<pid>/stat (start time after boot), or '' when unknown. */
function processStart(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/**
 * Tokens and the catalog live in the data directory: no group or other access. A directory of this user
 * that others may only read is restricted to 0700; one others may write to (a shared folder such as /tmp)
 * or one owned by another user is refused, since changing its mode would break its other users.
 */
async function tighten(dataDir: string, log: Logger): Promise<void> {
  const st = await stat(dataDir);
  const mode = (st.mode & 0o7777).toString(8);
  if ((st.mode & 0o077) === 0) return;
  const uid = process.getuid?.();
  const refuse = (why: string, cause?: unknown): Error =>
    tcError('TC_ERR_CONFIG', `data directory ${dataDir} (mode ${mode}) ${why}: choose a private directory`, {
      cause,
      details: { dataDir },
    });
  if ((st.mode & 0o022) !== 0 || (st.mode & 0o1000) !== 0) throw refuse('is writable by other users');
  if (uid !== undefined && st.uid !== uid) throw refuse(`belongs to another user (uid ${st.uid}) and is readable by others`);
  try {
    await chmod(dataDir, 0o700);
  } catch (error) {
    throw refuse(`is readable by other users and cannot be restricted (${(error as Error).message})`, error);
  }
  log.warn({ dataDir, mode }, 'data directory was readable by other users; restricted it to mode 700');
}

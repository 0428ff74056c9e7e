// The spill journal, `<dataDir>/objects/journal`: one JSON line per commit (every object of a transaction
// on one line, so a crash keeps all of it or none), delete and namespace change. Replayed at start (a line
// cut short by a crash is dropped), then rewritten compactly, so it holds the live state plus what came
// after.

import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../core/logger.js';
import { wrapIoError } from '../../core/errors.js';
import { checkNamespace, parseObjectKey } from '../../core/object-keys.js';
import type { NamespaceRecord } from './namespaces.js';
import type { ObjectTier } from './object-store-api.js';

/** A committed object as journaled. `file`: its file name in the journal's folder (disk tier). */
export interface JournalObject {
  readonly key: string;
  readonly version: number;
  readonly size: number;
  readonly crc: number;
  readonly tier: ObjectTier;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly file?: string;
}

/** One journal line. */
export type JournalRecord =
  | { readonly t: 'put'; readonly o: readonly JournalObject[] }
  | { readonly t: 'del'; readonly k: readonly (readonly [string, number])[] }
  | ({ readonly t: 'ns' } & NamespaceRecord)
  | { readonly t: 'ver'; readonly v: number };

/** What a replay found. */
export interface JournalState {
  readonly objects: Map<string, JournalObject>;
  readonly namespaces: Map<string, NamespaceRecord>;
  /** Highest version ever journaled (0: none). */
  readonly maxVersion: number;
  /** Lines dropped (cut short by a crash, or unreadable). */
  readonly dropped: number;
}

/** The journal's file name in its folder. */
export const JOURNAL_FILE = 'journal';

/**
 * An open journal (appends are synchronous: a commit is journaled before it is visible).
 *
 * @example const { journal, state } = await ObjectJournal.open(dir, log); journal.append({ t: 'del', k: [[key, v]] });
 */
export class ObjectJournal {
  private fd: number | undefined;
  /** Lines in the file (the store rewrites it when they far outnumber the live records). */
  lines: number;

  private constructor(
    private readonly path: string,
    fd: number,
    lines: number,
  ) {
    this.fd = fd;
    this.lines = lines;
  }

  /**
   * Creates the folder, replays the journal and rewrites it compactly (a torn last line goes away).
   *
   * @throws TC_ERR_IO, TC_ERR_NO_SPACE
   */
  static async open(dir: string, log: Logger): Promise<{ journal: ObjectJournal; state: JournalState }> {
    const path = join(dir, JOURNAL_FILE);
    await mkdir(dir, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
      throw wrapIoError(error, 'cannot create the object spill folder', dir);
    });
    const text = await readFile(path, 'utf8').catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw wrapIoError(error, 'cannot read the object journal', path);
    });
    const state = replayJournal(text);
    if (state.dropped > 0) log.warn({ path, dropped: state.dropped }, 'object journal: dropped lines cut short by a crash or unreadable');
    const tmp = `${path}.tmp`;
    try {
      const text = compactJournal(state);
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      return { journal: new ObjectJournal(path, openSync(path, 'a', 0o600), countLines(text)), state };
    } catch (error) {
      throw wrapIoError(error, 'cannot rewrite the object journal', path);
    }
  }

  /** Appends one line. @throws TC_ERR_IO, TC_ERR_NO_SPACE, TC_ERR_SHUTTING_DOWN */
  append(record: JournalRecord): void {
    if (this.fd === undefined) throw wrapIoError(new Error('the journal is closed'), 'cannot journal an object change', this.path);
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    try {
      for (let at = 0; at < line.length;) at += writeSync(this.fd, line, at, line.length - at);
    } catch (error) {
      throw wrapIoError(error, 'cannot journal an object change', this.path);
    }
    this.lines++;
  }

  /**
   * Replaces the file with `state`'s compact form (written aside, synced, renamed over it), so a long-running
   * daemon's journal stays near the size of its live state. Synchronous: no append can interleave.
   *
   * @throws TC_ERR_IO, TC_ERR_NO_SPACE (the old file is then kept as it was)
   */
  rewrite(state: JournalState): void {
    if (this.fd === undefined) return;
    const text = compactJournal(state);
    const tmp = `${this.path}.tmp`;
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        const bytes = Buffer.from(text);
        for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
    } catch (error) {
      throw wrapIoError(error, 'cannot rewrite the object journal', this.path);
    }
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a', 0o600);
    this.lines = countLines(text);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Replays journal text: later lines win; a line that does not parse is dropped (counted). */
export function replayJournal(text: string): JournalState {
  const objects = new Map<string, JournalObject>();
  const namespaces = new Map<string, NamespaceRecord>();
  let maxVersion = 0;
  let dropped = 0;
  const lines = text.split('\n');
  // The text after the last newline is a line a crash cut short (or nothing).
  const last = lines.pop() ?? '';
  if (last.length > 0) dropped++;
  for (const line of lines) {
    if (line.length === 0) continue;
    const record = parseRecord(line);
    if (record === undefined) {
      dropped++;
      continue;
    }
    switch (record.t) {
      case 'put':
        for (const o of record.o) {
          objects.set(o.key, o);
          maxVersion = Math.max(maxVersion, o.version);
        }
        break;
      case 'del':
        for (const [key, version] of record.k) if (objects.get(key)?.version === version) objects.delete(key);
        break;
      case 'ns':
        namespaces.set(record.ns, { ns: record.ns, tokenHash: record.tokenHash, maxBytes: record.maxBytes });
        break;
      case 'ver':
        maxVersion = Math.max(maxVersion, record.v);
        break;
    }
  }
  return { objects, namespaces, maxVersion, dropped };
}

/** The journal text of a state: its version mark, namespaces, then each object. */
export function compactJournal(state: JournalState): string {
  const lines: JournalRecord[] = [{ t: 'ver', v: state.maxVersion }];
  for (const ns of state.namespaces.values()) lines.push({ t: 'ns', ...ns });
  for (const o of state.objects.values()) lines.push({ t: 'put', o: [o] });
  return lines.map((r) => `${JSON.stringify(r)}\n`).join('');
}

function countLines(text: string): number {
  let n = 0;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) n++;
  return n;
}

const TIERS: readonly string[] = ['memory', 'shm', 'disk'];
/** Names of object files in the spill folder. */
export const OBJECT_FILE = /^o-[0-9a-f]{1,64}\.bin$/;

function parseRecord(line: string): JournalRecord | undefined {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof r !== 'object' || r === null) return undefined;
  const rec = r as Record<string, unknown>;
  switch (rec.t) {
    case 'put':
      return Array.isArray(rec.o) && rec.o.every(isObject) ? (rec as JournalRecord) : undefined;
    case 'del':
      return Array.isArray(rec.k) && rec.k.every((p) => Array.isArray(p) && typeof p[0] === 'string' && isVersion(p[1]))
        ? (rec as JournalRecord)
        : undefined;
    case 'ns':
      return typeof rec.ns === 'string' &&
        valid(() => checkNamespace(rec.ns as string)) &&
        (rec.tokenHash === null || (typeof rec.tokenHash === 'string' && /^[0-9a-f]{64}$/.test(rec.tokenHash))) &&
        (rec.maxBytes === null || isCount(rec.maxBytes))
        ? (rec as JournalRecord)
        : undefined;
    case 'ver':
      return isCount(rec.v) ? (rec as JournalRecord) : undefined;
    default:
      return undefined;
  }
}

function isObject(o: unknown): o is JournalObject {
  if (typeof o !== 'object' || o === null) return false;
  const x = o as Record<string, unknown>;
  return (
    typeof x.key === 'string' &&
    valid(() => parseObjectKey(x.key as string)) &&
    isVersion(x.version) &&
    isCount(x.size) &&
    typeof x.crc === 'number' &&
    Number.isInteger(x.crc) &&
    x.crc >= 0 &&
    x.crc <= 0xffffffff &&
    typeof x.tier === 'string' &&
    TIERS.includes(x.tier) &&
    isCount(x.createdAt) &&
    (x.expiresAt === null || isCount(x.expiresAt)) &&
    (x.file === undefined || (typeof x.file === 'string' && OBJECT_FILE.test(x.file)))
  );
}

function valid(check: () => unknown): boolean {
  try {
    check();
    return true;
  } catch {
    return false;
  }
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isVersion(v: unknown): v is number {
  return isCount(v) && v > 0;
}

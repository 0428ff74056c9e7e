// The SQLite session metadata store (better-sqlite3): one file, WAL mode, one row per session. Every change runs
// in one IMMEDIATE transaction (the write lock is taken before the row is read, so a second process waits on
// busy_timeout and then sees the first one's commit); the clock is this host's. A restarted server reopens the
// file and finds every session as last committed (synchronous=NORMAL in WAL survives a killed process).

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { tcError, isTensorcastError, type TensorcastError } from '../../core/errors.js';
import type { SessionGeometry } from '../geometry.js';
import type { SessionLease, SessionRecord } from '../session-types.js';
import { checkCreate, checkSessionId, listLimit, newRecord, sessionExists } from './session-meta-rules.js';
import { SESSION_COLUMNS, recordValues, rowToRecord, type SessionRow } from './session-meta-rows.js';
import { acquireChange, releaseChange, removeChange, renewChange, updateChange, type MetaChange } from './session-meta-steps.js';
import type { SessionChange, SessionListOptions, SessionMetaStore } from './session-meta-store.js';

const SCHEMA = `CREATE TABLE IF NOT EXISTS tc_sessions (
  session_id TEXT PRIMARY KEY, geometry_json TEXT NOT NULL, geometry_hash TEXT NOT NULL, tokens INTEGER NOT NULL,
  entries_json TEXT NOT NULL, version INTEGER NOT NULL, fence INTEGER NOT NULL, lease_owner TEXT, lease_fence INTEGER,
  lease_expires_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`;

const UPSERT = `INSERT OR REPLACE INTO tc_sessions (${SESSION_COLUMNS.join(', ')}) VALUES (${SESSION_COLUMNS.map(() => '?').join(', ')})`;

/** Options of the SQLite store. */
export interface SqliteSessionMetaStoreOptions {
  /** How long a change waits for another process's write lock before TC_ERR_BACKEND, in ms (default 5000). */
  readonly callTimeoutMs?: number;
}

/**
 * A `SessionMetaStore` in a SQLite file.
 *
 * @example const meta = SqliteSessionMetaStore.open('/var/lib/tensorcast/sessions.db');
 */
export class SqliteSessionMetaStore implements SessionMetaStore {
  readonly kind = 'sqlite';
  readonly shared = false;
  readonly #db: Database.Database;
  readonly #path: string;
  readonly #select: Database.Statement<[string], SessionRow>;
  readonly #list: Database.Statement<[string, number], SessionRow>;
  readonly #insert: Database.Statement<unknown[]>;
  readonly #upsert: Database.Statement<unknown[]>;
  readonly #delete: Database.Statement<[string]>;
  #closed = false;

  private constructor(db: Database.Database, path: string) {
    this.#db = db;
    this.#path = path;
    this.#select = db.prepare<[string], SessionRow>('SELECT * FROM tc_sessions WHERE session_id = ?');
    this.#list = db.prepare<[string, number], SessionRow>('SELECT * FROM tc_sessions WHERE session_id > ? ORDER BY session_id LIMIT ?');
    this.#insert = db.prepare<unknown[]>(UPSERT.replace('INSERT OR REPLACE', 'INSERT'));
    this.#upsert = db.prepare<unknown[]>(UPSERT);
    this.#delete = db.prepare<[string]>('DELETE FROM tc_sessions WHERE session_id = ?');
  }

  /**
   * Opens (creating if missing) the store at `path`.
   *
   * @throws TC_ERR_BACKEND when the file cannot be opened or is not a SQLite database
   */
  static open(path: string, options: SqliteSessionMetaStoreOptions = {}): SqliteSessionMetaStore {
    if (path === '') throw tcError('TC_ERR_CONFIG', 'session metadata URL sqlite:// names no file (use sqlite:///path/sessions.db)');
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(path), { recursive: true });
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma(`busy_timeout = ${Math.max(1, Math.floor(options.callTimeoutMs ?? 5000))}`);
      db.exec(SCHEMA);
      return new SqliteSessionMetaStore(db, path);
    } catch (error) {
      db?.close();
      throw tcError('TC_ERR_BACKEND', `cannot open the SQLite session store at ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  create(sessionId: string, geometry: SessionGeometry, geometryHash: string): Promise<SessionRecord> {
    return this.#run('create', () => {
      const checked = checkCreate(sessionId, geometry, geometryHash);
      const record = newRecord(sessionId, checked, geometryHash, Date.now());
      try {
        this.#insert.run(...recordValues(record));
      } catch (error) {
        if ((error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw sessionExists(sessionId);
        throw error;
      }
      return record;
    });
  }

  get(sessionId: string): Promise<SessionRecord | undefined> {
    return this.#run('get', () => {
      checkSessionId(sessionId);
      const row = this.#select.get(sessionId);
      return row === undefined ? undefined : rowToRecord(row);
    });
  }

  list(options: SessionListOptions = {}): Promise<SessionRecord[]> {
    return this.#run('list', () => this.#list.all(options.after ?? '', listLimit(options)).map(rowToRecord));
  }

  acquire(sessionId: string, owner: string, ttlMs: number): Promise<SessionLease> {
    return this.#change('acquire', () => acquireChange(sessionId, owner, ttlMs));
  }

  renew(lease: SessionLease, ttlMs: number): Promise<SessionLease> {
    return this.#change('renew', () => renewChange(lease, ttlMs));
  }

  release(lease: SessionLease): Promise<void> {
    return this.#change('release', () => releaseChange(lease));
  }

  update(lease: SessionLease, expectedVersion: number, change: SessionChange): Promise<SessionRecord> {
    return this.#change('update', () => updateChange(lease, expectedVersion, change));
  }

  remove(sessionId: string, lease?: SessionLease): Promise<SessionRecord | undefined> {
    return this.#change('remove', () => removeChange(sessionId, lease));
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#db.close();
    }
    return Promise.resolve();
  }

  /** Runs one change in an IMMEDIATE transaction: read the row under the write lock, decide, write. */
  #change<T>(what: string, make: () => MetaChange<T>): Promise<T> {
    return this.#run(what, () => {
      const change = make();
      return this.#db
        .transaction(() => {
          const row = this.#select.get(change.sessionId);
          const step = change.decide(row === undefined ? undefined : rowToRecord(row), Date.now());
          if (step.write === 'put') this.#upsert.run(...recordValues(step.record));
          else if (step.write === 'delete') this.#delete.run(change.sessionId);
          return step.result;
        })
        .immediate();
    });
  }

  #run<T>(what: string, fn: () => T): Promise<T> {
    return new Promise<T>((resolve) => {
      if (this.#closed) throw tcError('TC_ERR_SHUTTING_DOWN', 'the session metadata store is closed');
      try {
        resolve(fn());
      } catch (error) {
        throw backendError(error, `session store ${what} (${this.#path})`);
      }
    });
  }
}

function backendError(error: unknown, what: string): TensorcastError {
  if (isTensorcastError(error)) return error;
  return tcError('TC_ERR_BACKEND', `${what}: ${(error as Error).message}`, { cause: error });
}

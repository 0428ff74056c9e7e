// The PostgreSQL session metadata store, on `pg`: a connection pool, one table `tc_sessions` in the URL's schema
// (created with the schema when missing, under an advisory lock). Every change is one transaction that locks the
// session's row (SELECT ... FOR UPDATE), reads the server's clock after the lock is granted, decides with the
// shared steps (session-meta-steps.ts) and writes: servers sharing the database serialize per session.

import type pg from 'pg';
import { tcError } from '../../core/errors.js';
import { DEFAULT_CALL_TIMEOUT_MS, type CatalogLog } from '../../catalog/catalog-options.js';
import { openPostgresPool, postgresCall, type PostgresConnection } from '../../catalog/postgres/postgres-connection.js';
import { parsePostgresCatalogUrl, type PostgresCatalogUrl } from '../../catalog/postgres/postgres-url.js';
import type { SessionGeometry } from '../geometry.js';
import type { SessionLease, SessionRecord } from '../session-types.js';
import { checkCreate, checkSessionId, listLimit, newRecord, sessionExists } from './session-meta-rules.js';
import { SESSION_COLUMNS, recordValues, rowToRecord, type SessionRow } from './session-meta-rows.js';
import { acquireChange, releaseChange, removeChange, renewChange, updateChange, type MetaChange } from './session-meta-steps.js';
import type { SessionChange, SessionListOptions, SessionMetaStore } from './session-meta-store.js';

/** First key of the schema advisory lock (the second is a hash of the schema name). */
const LOCK_CLASS = 0x7473; // 'ts'

const TABLE = `CREATE TABLE IF NOT EXISTS tc_sessions (
  session_id text COLLATE "C" PRIMARY KEY, geometry_json text NOT NULL, geometry_hash text NOT NULL, tokens bigint NOT NULL,
  entries_json text NOT NULL, version bigint NOT NULL, fence bigint NOT NULL, lease_owner text, lease_fence bigint,
  lease_expires_at bigint, created_at bigint NOT NULL, updated_at bigint NOT NULL)`;
/** The server's clock in ms (the time of the statement, not of the transaction's start). */
const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
const PARAMS = SESSION_COLUMNS.map((_, i) => `$${i + 1}`).join(', ');
const SQL = {
  now: `SELECT ${NOW_MS} AS now_ms`,
  insert: `INSERT INTO tc_sessions (${SESSION_COLUMNS.join(', ')}) VALUES (${PARAMS}) ON CONFLICT (session_id) DO NOTHING`,
  select: 'SELECT * FROM tc_sessions WHERE session_id = $1',
  lock: `SELECT *, ${NOW_MS} AS now_ms FROM tc_sessions WHERE session_id = $1 FOR UPDATE`,
  list: 'SELECT * FROM tc_sessions WHERE session_id > $1 ORDER BY session_id LIMIT $2',
  put: `UPDATE tc_sessions SET (${SESSION_COLUMNS.join(', ')}) = (${PARAMS}) WHERE session_id = $1`,
  delete: 'DELETE FROM tc_sessions WHERE session_id = $1',
} as const;

/** Options of the PostgreSQL store. */
export interface PostgresSessionMetaStoreOptions {
  readonly log?: CatalogLog;
  readonly callTimeoutMs?: number;
}

/**
 * Session metadata in PostgreSQL (table `tc_sessions` in one schema, default `tensorcast`).
 *
 * @example const meta = await PostgresSessionMetaStore.open('postgres://tc:secret@db:5432/cluster?schema=prod');
 */
export class PostgresSessionMetaStore implements SessionMetaStore {
  readonly kind = 'postgres';
  readonly shared = true;
  #closed = false;

  private constructor(
    private readonly connection: PostgresConnection,
    private readonly url: PostgresCatalogUrl,
  ) {}

  private get pool(): pg.Pool {
    return this.connection.pool;
  }

  /**
   * Opens a pool on `url` and creates the schema and table when missing.
   *
   * @throws TC_ERR_CONFIG for a bad URL; TC_ERR_BACKEND when the server cannot be reached within the call timeout.
   */
  static async open(url: string, options: PostgresSessionMetaStoreOptions = {}): Promise<PostgresSessionMetaStore> {
    const parsed = parsePostgresCatalogUrl(url);
    const connection = await openPostgresPool({
      url: parsed,
      callTimeoutMs: options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      applicationName: 'tensorcast-sessions',
      names: { field: 'sessions', what: 'session metadata store' },
      log: options.log,
      setup: async (client) => {
        await client.query('BEGIN');
        try {
          await client.query({ text: 'SELECT pg_advisory_xact_lock($1, hashtext($2))', values: [LOCK_CLASS, parsed.schema] });
          await client.query(`CREATE SCHEMA IF NOT EXISTS "${parsed.schema}"`);
          await client.query(TABLE);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      },
    });
    return new PostgresSessionMetaStore(connection, parsed);
  }

  async create(sessionId: string, geometry: SessionGeometry, geometryHash: string): Promise<SessionRecord> {
    const checked = checkCreate(sessionId, geometry, geometryHash);
    return this.#with('create', async (client) => {
      const { rows } = await client.query<{ now_ms: string }>(SQL.now);
      const record = newRecord(sessionId, checked, geometryHash, Number(rows[0]?.now_ms));
      const inserted = await client.query(SQL.insert, recordValues(record));
      if (inserted.rowCount !== 1) throw sessionExists(sessionId);
      return record;
    });
  }

  async get(sessionId: string): Promise<SessionRecord | undefined> {
    checkSessionId(sessionId);
    return this.#with('get', async (client) => {
      const row = (await client.query<SessionRow>(SQL.select, [sessionId])).rows[0];
      return row === undefined ? undefined : rowToRecord(row);
    });
  }

  async list(options: SessionListOptions = {}): Promise<SessionRecord[]> {
    const limit = listLimit(options);
    return this.#with('list', async (client) =>
      (await client.query<SessionRow>(SQL.list, [options.after ?? '', limit])).rows.map(rowToRecord),
    );
  }

  async acquire(sessionId: string, owner: string, ttlMs: number): Promise<SessionLease> {
    return await this.#change('acquire', acquireChange(sessionId, owner, ttlMs));
  }

  async renew(lease: SessionLease, ttlMs: number): Promise<SessionLease> {
    return await this.#change('renew', renewChange(lease, ttlMs));
  }

  async release(lease: SessionLease): Promise<void> {
    return await this.#change('release', releaseChange(lease));
  }

  async update(lease: SessionLease, expectedVersion: number, change: SessionChange): Promise<SessionRecord> {
    return await this.#change('update', updateChange(lease, expectedVersion, change));
  }

  async remove(sessionId: string, lease?: SessionLease): Promise<SessionRecord | undefined> {
    return await this.#change('remove', removeChange(sessionId, lease));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end().catch(() => undefined);
  }

  /** One change in one transaction: lock the row, read the clock, decide, write, commit. */
  #change<T>(op: string, change: MetaChange<T>): Promise<T> {
    return this.#with(
      op,
      async (client) => {
        const locked = (await client.query<SessionRow & { now_ms: string }>(SQL.lock, [change.sessionId])).rows[0];
        const nowMs = Number(locked?.now_ms ?? (await client.query<{ now_ms: string }>(SQL.now)).rows[0]?.now_ms);
        const step = change.decide(locked === undefined ? undefined : rowToRecord(locked), nowMs);
        if (step.write === 'put') await client.query(SQL.put, recordValues(step.record));
        else if (step.write === 'delete') await client.query(SQL.delete, [change.sessionId]);
        return step.result;
      },
      true,
    );
  }

  /** Runs `fn` on a pooled connection (in one transaction when asked); driver failures become TC_ERR_BACKEND, a broken connection is dropped. */
  async #with<T>(op: string, fn: (client: pg.PoolClient) => Promise<T>, transaction = false): Promise<T> {
    if (this.#closed) throw tcError('TC_ERR_SHUTTING_DOWN', 'the session metadata store is closed');
    return postgresCall(this.connection, this.url, `sessions ${op}`, transaction, fn);
  }
}

// The PostgreSQL handshake store, on `pg`: published ranks in the table `handshake_ranks` of the catalog URL's
// schema (postgres-handshake-schema.ts), payloads as bytea. A publish is one transaction holding an advisory
// lock on its engine, so concurrent publishes of one engine from any number of listeners serialize; reads,
// renews and removes are single statements. Time is the server's clock (ms since the epoch).

import type pg from 'pg';
import { tcError } from '../../core/errors.js';
import { backendError } from '../../catalog/catalog-checks.js';
import { DEFAULT_CALL_TIMEOUT_MS } from '../../catalog/catalog-options.js';
import {
  isConnectionFailure,
  openPostgresPool,
  postgresCall,
  type PostgresConnection,
} from '../../catalog/postgres/postgres-connection.js';
import { parsePostgresCatalogUrl, type PostgresCatalogUrl } from '../../catalog/postgres/postgres-url.js';
import type { EngineSummary } from '../../protocol/http/handshake.js';
import {
  DEFAULT_EXPIRED_GRACE_MS,
  type EngineHead,
  type HandshakeStore,
  type PublishLimits,
  type PublishRecord,
  type PublishResult,
  type RankLookup,
} from './handshake-store.js';
import type { OpenHandshakeStoreOptions } from './open-handshake-store.js';
import { HANDSHAKE_LOCK_CLASS, migrateHandshakeTables } from './postgres-handshake-schema.js';
import { summarizeRows, type RankRow } from './rank-rows.js';
import { checkPublishLimits, checkRecordRanks, decidePublish } from './store-rules.js';

/** The server's clock in ms. clock_timestamp, not now(): inside the publish transaction it is read after the lock wait. */
const NOW_MS = 'floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint';
const ROW_COLUMNS = 'r.engine_id, r.tp_rank, r.dp_rank, r.incarnation, r.compat_hash, r.tp_size, r.bytes, r.published_at, r.expires_at';

const SQL = {
  lockEngine: { name: 'tch_lock_engine', text: 'SELECT pg_advisory_xact_lock($1, hashtext($2))' },
  /** The clock, then the engine's rows (none: one row of nulls). */
  engineRows: {
    name: 'tch_engine_rows',
    text: `SELECT n.now, ${ROW_COLUMNS} FROM (SELECT ${NOW_MS} AS now) n LEFT JOIN handshake_ranks r ON r.engine_id = $1 ORDER BY r.tp_rank, r.dp_rank`,
  },
  allRows: {
    name: 'tch_all_rows',
    text: `SELECT n.now, ${ROW_COLUMNS} FROM (SELECT ${NOW_MS} AS now) n LEFT JOIN handshake_ranks r ON r.expires_at > n.now
           ORDER BY r.engine_id, r.tp_rank, r.dp_rank`,
  },
  forgetEngine: { name: 'tch_forget_engine', text: 'DELETE FROM handshake_ranks WHERE engine_id = $1 AND expires_at + $2 <= $3' },
  dropEngine: { name: 'tch_drop_engine', text: 'DELETE FROM handshake_ranks WHERE engine_id = $1' },
  putRank: {
    name: 'tch_put_rank',
    text: `INSERT INTO handshake_ranks (engine_id, tp_rank, dp_rank, incarnation, compat_hash, tp_size, payload, bytes, published_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (engine_id, tp_rank, dp_rank) DO UPDATE SET incarnation = excluded.incarnation, compat_hash = excluded.compat_hash,
           tp_size = excluded.tp_size, payload = excluded.payload, bytes = excluded.bytes, published_at = excluded.published_at,
           expires_at = excluded.expires_at`,
  },
  /** The clock, then one rank; its payload only while it is live. */
  getRank: {
    name: 'tch_get_rank',
    text: `SELECT n.now, r.incarnation, r.compat_hash, r.tp_size, r.published_at, r.expires_at,
           CASE WHEN r.expires_at > n.now THEN r.payload END AS payload
           FROM (SELECT ${NOW_MS} AS now) n LEFT JOIN handshake_ranks r ON r.engine_id = $1 AND r.tp_rank = $2 AND r.dp_rank = $3`,
  },
  renew: {
    name: 'tch_renew',
    text: `WITH n AS (SELECT ${NOW_MS} AS now)
           UPDATE handshake_ranks r SET expires_at = n.now + $3 FROM n
           WHERE r.engine_id = $1 AND r.incarnation = $2 AND r.expires_at > n.now RETURNING r.expires_at`,
  },
  remove: {
    name: 'tch_remove',
    text: `WITH n AS (SELECT ${NOW_MS} AS now)
           DELETE FROM handshake_ranks r USING n WHERE r.engine_id = $1 AND ($2::text IS NULL OR r.incarnation = $2)
           RETURNING (r.expires_at + $3 > n.now) AS remembered`,
  },
  sweep: { name: 'tch_sweep', text: `DELETE FROM handshake_ranks WHERE expires_at + $1 <= ${NOW_MS}` },
} as const;

interface RowFields {
  now: string;
  engine_id: string | null;
  tp_rank: number;
  dp_rank: number;
  incarnation: string;
  compat_hash: string;
  tp_size: number;
  bytes: number;
  published_at: string;
  expires_at: string;
}
interface RankFields {
  now: string;
  incarnation: string | null;
  compat_hash: string;
  tp_size: number;
  published_at: string;
  expires_at: string;
  payload: Buffer | null;
}

const toRow = (r: RowFields): RankRow => ({
  tpRank: r.tp_rank,
  dpRank: r.dp_rank,
  incarnation: r.incarnation,
  compatibilityHash: r.compat_hash,
  tpSize: r.tp_size,
  bytes: r.bytes,
  publishedAtMs: Number(r.published_at),
  expiresAtMs: Number(r.expires_at),
});

type Queryable = Pick<pg.PoolClient, 'query'>;

/**
 * Published ranks in PostgreSQL (the table `handshake_ranks` of the catalog URL's schema).
 *
 * @example const store = await PostgresHandshakeStore.open('postgres://tc:secret@db:5432/cluster?schema=prod');
 */
export class PostgresHandshakeStore implements HandshakeStore {
  readonly kind = 'postgres';
  #closed = false;

  private constructor(
    private readonly connection: PostgresConnection,
    private readonly url: PostgresCatalogUrl,
    private readonly graceMs: number,
  ) {}

  private get pool(): pg.Pool {
    return this.connection.pool;
  }

  /**
   * Opens a pool on `url` and creates the handshake tables when missing.
   *
   * @throws TC_ERR_CONFIG for a bad URL; TC_ERR_BACKEND when the server cannot be reached within the call
   * timeout, refuses the credentials, or holds newer handshake tables.
   */
  static async open(url: string, options: OpenHandshakeStoreOptions = {}): Promise<PostgresHandshakeStore> {
    const parsed = parsePostgresCatalogUrl(url);
    const connection = await openPostgresPool({
      url: parsed,
      callTimeoutMs: options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      applicationName: 'tensorcast-handshake',
      names: { field: 'catalog', what: 'handshake store' },
      log: options.log,
      setup: (client) => migrateHandshakeTables(client, parsed.schema),
    });
    return new PostgresHandshakeStore(connection, parsed, options.expiredGraceMs ?? DEFAULT_EXPIRED_GRACE_MS);
  }

  async head(engineId: string): Promise<EngineHead | undefined> {
    const summary = await this.engine(engineId);
    return summary === undefined ? undefined : { incarnation: summary.incarnation, compatibilityHash: summary.compatibilityHash };
  }

  async publish(record: PublishRecord, limits: PublishLimits): Promise<PublishResult> {
    checkPublishLimits(limits);
    checkRecordRanks(record);
    return this.#transaction('publish', async (client) => {
      await this.#query(client, SQL.lockEngine, [HANDSHAKE_LOCK_CLASS, record.engineId]);
      const { rows } = await this.#query<RowFields>(client, SQL.engineRows, [record.engineId]);
      const now = Number(rows[0]?.now);
      const remembered = rows.filter((r) => r.engine_id !== null && Number(r.expires_at) + this.graceMs > now).map(toRow);
      const { keep, replacedIncarnation } = decidePublish(remembered, record, limits, now);
      if (keep) await this.#query(client, SQL.forgetEngine, [record.engineId, this.graceMs, now]);
      else await this.#query(client, SQL.dropEngine, [record.engineId]);
      const expiresAtMs = now + limits.ttlMs;
      const payload = Buffer.from(record.payload.buffer, record.payload.byteOffset, record.payload.byteLength);
      await this.#query(client, SQL.putRank, [
        record.engineId,
        record.tpRank,
        record.dpRank,
        record.incarnation,
        record.compatibilityHash,
        record.tpSize,
        payload,
        payload.byteLength,
        now,
        expiresAtMs,
      ]);
      return { expiresAtMs, replacedIncarnation };
    });
  }

  async rank(engineId: string, tpRank: number, dpRank: number): Promise<RankLookup> {
    const row = (await this.#query<RankFields>(this.pool, SQL.getRank, [engineId, tpRank, dpRank])).rows[0];
    if (row === undefined || row.incarnation === null) return { state: 'missing' };
    const now = Number(row.now);
    const expiresAtMs = Number(row.expires_at);
    if (expiresAtMs + this.graceMs <= now) return { state: 'missing' };
    if (row.payload === null) return { state: 'expired', incarnation: row.incarnation, expiredAtMs: expiresAtMs };
    return {
      state: 'live',
      rank: {
        incarnation: row.incarnation,
        compatibilityHash: row.compat_hash,
        tpSize: row.tp_size,
        payload: row.payload,
        publishedAtMs: Number(row.published_at),
        expiresAtMs,
      },
    };
  }

  async renew(engineId: string, incarnation: string, ttlMs: number): Promise<{ renewed: number; expiresAtMs: number }> {
    checkPublishLimits({ ttlMs, maxEngineBytes: 0 });
    const { rows } = await this.#query<{ expires_at: string }>(this.pool, SQL.renew, [engineId, incarnation, ttlMs]);
    return { renewed: rows.length, expiresAtMs: rows.length === 0 ? 0 : Number(rows[0]?.expires_at) };
  }

  async remove(engineId: string, incarnation?: string): Promise<number> {
    const { rows } = await this.#query<{ remembered: boolean }>(this.pool, SQL.remove, [engineId, incarnation ?? null, this.graceMs]);
    return rows.filter((r) => r.remembered).length;
  }

  async engine(engineId: string): Promise<EngineSummary | undefined> {
    const { rows } = await this.#query<RowFields>(this.pool, SQL.engineRows, [engineId]);
    return summarizeRows(engineId, rows.filter((r) => r.engine_id !== null).map(toRow), Number(rows[0]?.now));
  }

  async engines(): Promise<EngineSummary[]> {
    const { rows } = await this.#query<RowFields>(this.pool, SQL.allRows);
    const now = Number(rows[0]?.now);
    const byEngine = new Map<string, RankRow[]>();
    for (const r of rows) {
      if (r.engine_id === null) continue;
      const list = byEngine.get(r.engine_id) ?? [];
      list.push(toRow(r));
      byEngine.set(r.engine_id, list);
    }
    const out: EngineSummary[] = [];
    for (const [engineId, list] of byEngine) {
      const summary = summarizeRows(engineId, list, now);
      if (summary !== undefined) out.push(summary);
    }
    return out;
  }

  async sweep(): Promise<void> {
    await this.#query(this.pool, SQL.sweep, [this.graceMs]);
  }

  /** Closes the pool once the calls in flight are done. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end().catch(() => undefined);
  }

  /** Runs `fn` in one transaction on one pooled connection; a tensorcast error from `fn` rolls back and passes through. */
  async #transaction<T>(op: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.#open();
    return postgresCall(this.connection, this.url, `handshake ${op}`, true, fn);
  }

  /** Runs one named statement; a driver failure becomes TC_ERR_BACKEND. */
  async #query<R extends pg.QueryResultRow>(
    on: Queryable,
    statement: { readonly name: string; readonly text: string },
    values: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    this.#open();
    try {
      const result = await on.query<R>({ name: statement.name, text: statement.text, values });
      this.connection.state.restored();
      return result;
    } catch (error) {
      if (isConnectionFailure(error)) this.connection.state.lost(error);
      throw backendError(`handshake ${statement.name}`, this.url.redacted, error, this.url.password);
    }
  }

  #open(): void {
    if (this.#closed) throw tcError('TC_ERR_SHUTTING_DOWN', 'the handshake store is closed');
  }
}

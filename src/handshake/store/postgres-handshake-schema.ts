// The PostgreSQL handshake store's tables, in the catalog URL's schema beside the catalog's own, as numbered
// migrations recorded in `handshake_migrations` (apart from the catalog's `schema_migrations`, so neither
// numbering depends on the other). They run in one transaction under an advisory lock: listeners starting at
// once never race. Text ids use the "C" collation (byte order, as Redis and the memory store sort).

import type { PoolClient } from 'pg';
import { tcError } from '../../core/errors.js';

/** Migration n+1 is HANDSHAKE_MIGRATIONS[n]; never edit one that has shipped, append a new one. */
export const HANDSHAKE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE handshake_ranks (
     engine_id text COLLATE "C" NOT NULL,
     tp_rank integer NOT NULL CHECK (tp_rank >= 0),
     dp_rank integer NOT NULL CHECK (dp_rank >= 0),
     incarnation text COLLATE "C" NOT NULL,
     compat_hash text COLLATE "C" NOT NULL,
     tp_size integer NOT NULL,
     payload bytea NOT NULL,
     bytes integer NOT NULL,
     published_at bigint NOT NULL,
     expires_at bigint NOT NULL,
     PRIMARY KEY (engine_id, tp_rank, dp_rank)
   );
   CREATE INDEX handshake_ranks_by_expiry ON handshake_ranks (expires_at);`,
];

/** First key of the handshake advisory locks: migrations (second key: the schema) and publishes (the engine). */
export const HANDSHAKE_LOCK_CLASS = 0x7468; // 'th'

/**
 * Creates `schema` when missing and applies the handshake migrations it lacks, in one transaction holding an
 * advisory lock on the schema's name.
 *
 * @throws TC_ERR_BACKEND when the schema's handshake tables are newer than this tensorcast; the driver's
 * errors otherwise.
 */
export async function migrateHandshakeTables(client: PoolClient, schema: string): Promise<void> {
  const ident = `"${schema}"`;
  await client.query('BEGIN');
  try {
    await client.query({ text: 'SELECT pg_advisory_xact_lock($1, hashtext($2))', values: [HANDSHAKE_LOCK_CLASS, `schema:${schema}`] });
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${ident}.handshake_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ v: number }>(`SELECT coalesce(max(version), 0)::integer AS v FROM ${ident}.handshake_migrations`);
    const version = rows[0]?.v ?? 0;
    if (version > HANDSHAKE_MIGRATIONS.length) {
      throw tcError(
        'TC_ERR_BACKEND',
        `handshake tables in schema ${schema} are at version ${version}, newer than this tensorcast (${HANDSHAKE_MIGRATIONS.length})`,
      );
    }
    for (let v = version; v < HANDSHAKE_MIGRATIONS.length; v++) {
      await client.query(`SET LOCAL search_path TO ${ident}`);
      await client.query(HANDSHAKE_MIGRATIONS[v]!);
      await client.query({ text: `INSERT INTO ${ident}.handshake_migrations (version) VALUES ($1)`, values: [v + 1] });
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

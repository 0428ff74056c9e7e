// The PostgreSQL catalog's schema, as numbered migrations recorded in `schema_migrations`. They run in one
// transaction under an advisory lock, so daemons starting at once never race: the first migrates, the
// others wait and then find nothing left to do. Text ids use the "C" collation: byte order, as in SQLite
// and Redis, whatever the database's locale.

import type { PoolClient } from 'pg';
import { tcError } from '../../core/errors.js';

/** Migration n+1 is MIGRATIONS[n]; never edit one that has shipped, append a new one. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE daemons (
     daemon_id text COLLATE "C" PRIMARY KEY,
     control_url text NOT NULL,
     data_address text NOT NULL,
     advertise_host text NOT NULL,
     state text NOT NULL CHECK (state IN ('up', 'draining')),
     heartbeat_at bigint NOT NULL
   );
   CREATE TABLE artifacts (
     artifact_id text COLLATE "C" PRIMARY KEY,
     index_hash text NOT NULL,
     data_hash text NOT NULL,
     total_bytes bigint NOT NULL,
     tensor_count integer NOT NULL,
     index_json text NOT NULL,
     files_json text NOT NULL,
     created_at bigint NOT NULL
   );
   CREATE INDEX artifacts_by_created ON artifacts (created_at, artifact_id);
   CREATE TABLE keys (
     key text COLLATE "C" PRIMARY KEY,
     artifact_id text COLLATE "C" NOT NULL REFERENCES artifacts (artifact_id),
     version bigint NOT NULL,
     updated_at bigint NOT NULL
   );
   CREATE TABLE replicas (
     artifact_id text COLLATE "C" NOT NULL,
     view_id text COLLATE "C" NOT NULL,
     daemon_id text COLLATE "C" NOT NULL,
     tier text COLLATE "C" NOT NULL CHECK (tier IN ('memory', 'export', 'shm', 'disk')),
     bytes bigint NOT NULL,
     state text NOT NULL DEFAULT 'published' CHECK (state IN ('published', 'retiring')),
     active_fetches integer NOT NULL DEFAULT 0 CHECK (active_fetches >= 0),
     PRIMARY KEY (artifact_id, view_id, daemon_id, tier)
   );
   CREATE INDEX replicas_by_daemon ON replicas (daemon_id, tier);`,
];

/** First key of the migration advisory lock (the second is a hash of the schema name). */
const LOCK_CLASS = 0x7463; // 'tc'

/**
 * Creates `schema` when missing and applies the migrations it lacks, in one transaction holding an
 * advisory lock on the schema's name. `client` has `schema` first on its search_path.
 *
 * @throws TC_ERR_BACKEND when the schema is newer than this tensorcast; the driver's errors otherwise.
 */
export async function migrate(client: PoolClient, schema: string): Promise<void> {
  const ident = `"${schema}"`;
  await client.query('BEGIN');
  try {
    await client.query({ text: 'SELECT pg_advisory_xact_lock($1, hashtext($2))', values: [LOCK_CLASS, schema] });
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${ident}.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ v: number }>(`SELECT coalesce(max(version), 0)::integer AS v FROM ${ident}.schema_migrations`);
    const version = rows[0]?.v ?? 0;
    if (version > MIGRATIONS.length) {
      throw tcError(
        'TC_ERR_BACKEND',
        `catalog schema ${schema} is at version ${version}, newer than this tensorcast (${MIGRATIONS.length})`,
      );
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      await client.query(MIGRATIONS[v]!);
      await client.query({ text: `INSERT INTO ${ident}.schema_migrations (version) VALUES ($1)`, values: [v + 1] });
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

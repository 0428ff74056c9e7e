// The PostgreSQL catalog's statements, each named so every pooled connection prepares it once. Table names
// are unqualified: each connection's search_path starts with the catalog's schema. Every change is one
// statement (atomic on its own); conditional ones say in their WHERE or ON CONFLICT what they expect.

/** A named statement: `{ name, text }`, given `values` at each call. */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

const ROW = 'artifact_id = $1 AND view_id = $2 AND daemon_id = $3 AND tier = $4';

export const SQL = {
  upsertDaemon: {
    name: 'tc_upsert_daemon',
    text: `INSERT INTO daemons (daemon_id, control_url, data_address, advertise_host, state, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (daemon_id) DO UPDATE SET control_url = excluded.control_url, data_address = excluded.data_address,
           advertise_host = excluded.advertise_host, state = excluded.state, heartbeat_at = excluded.heartbeat_at`,
  },
  listDaemons: { name: 'tc_list_daemons', text: 'SELECT * FROM daemons ORDER BY daemon_id' },
  insertArtifact: {
    name: 'tc_insert_artifact',
    text: `INSERT INTO artifacts (artifact_id, index_hash, data_hash, total_bytes, tensor_count, index_json, files_json, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (artifact_id) DO NOTHING`,
  },
  getArtifact: { name: 'tc_get_artifact', text: 'SELECT * FROM artifacts WHERE artifact_id = $1' },
  artifactExists: { name: 'tc_artifact_exists', text: 'SELECT 1 FROM artifacts WHERE artifact_id = $1' },
  listArtifacts: { name: 'tc_list_artifacts', text: 'SELECT * FROM artifacts ORDER BY created_at, artifact_id' },
  /** Unconditional bind: one upsert; concurrent ones serialize on the row and each counts the version up. */
  bindKeyAny: {
    name: 'tc_bind_key_any',
    text: `INSERT INTO keys (key, artifact_id, version, updated_at) VALUES ($1, $2, 1, $3)
           ON CONFLICT (key) DO UPDATE SET artifact_id = excluded.artifact_id, version = keys.version + 1, updated_at = excluded.updated_at
           RETURNING version`,
  },
  /** Create-only bind: of concurrent inserts exactly one returns a row. */
  bindKeyCreate: {
    name: 'tc_bind_key_create',
    text: `INSERT INTO keys (key, artifact_id, version, updated_at) VALUES ($1, $2, 1, $3) ON CONFLICT (key) DO NOTHING RETURNING version`,
  },
  /** Compare-and-swap: a concurrent update waits for the row lock, then re-checks the version and misses. */
  bindKeyAt: {
    name: 'tc_bind_key_at',
    text: `UPDATE keys SET artifact_id = $2, version = version + 1, updated_at = $3 WHERE key = $1 AND version = $4 RETURNING version`,
  },
  getKey: { name: 'tc_get_key', text: 'SELECT * FROM keys WHERE key = $1' },
  listKeys: { name: 'tc_list_keys', text: 'SELECT * FROM keys ORDER BY key' },
  deleteKey: { name: 'tc_delete_key', text: 'DELETE FROM keys WHERE key = $1 RETURNING version' },
  deleteKeyAt: { name: 'tc_delete_key_at', text: 'DELETE FROM keys WHERE key = $1 AND version = $2 RETURNING version' },
  /** An existing row keeps its active-fetch counter. */
  putReplica: {
    name: 'tc_put_replica',
    text: `INSERT INTO replicas (artifact_id, view_id, daemon_id, tier, bytes, state) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (artifact_id, view_id, daemon_id, tier) DO UPDATE SET bytes = excluded.bytes, state = excluded.state`,
  },
  setReplicaState: { name: 'tc_set_replica_state', text: `UPDATE replicas SET state = $5 WHERE ${ROW}` },
  adjustReplicaFetches: {
    name: 'tc_adjust_replica_fetches',
    text: `UPDATE replicas SET active_fetches = GREATEST(0, active_fetches + $5) WHERE ${ROW} RETURNING active_fetches`,
  },
  removeReplica: { name: 'tc_remove_replica', text: `DELETE FROM replicas WHERE ${ROW}` },
  removeDaemonReplicas: { name: 'tc_remove_daemon_replicas', text: 'DELETE FROM replicas WHERE daemon_id = $1 AND tier = ANY($2::text[])' },
  listReplicas: { name: 'tc_list_replicas', text: 'SELECT * FROM replicas ORDER BY artifact_id, view_id, daemon_id, tier' },
  listReplicasOf: {
    name: 'tc_list_replicas_of',
    text: 'SELECT * FROM replicas WHERE artifact_id = $1 ORDER BY view_id, daemon_id, tier',
  },
} satisfies Record<string, Statement>;

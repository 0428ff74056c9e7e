// The PostgreSQL catalog, on `pg`: a connection pool, named prepared statements (postgres-statements.ts),
// schema migrations under an advisory lock (postgres-migrations.ts). Connecting and each statement are
// bounded by the call timeout, so during an outage every call fails fast with TC_ERR_BACKEND; the pool
// drops broken connections and opens new ones once the server is back.

import type pg from 'pg';
import { tcError } from '../../core/errors.js';
import { validateKey } from '../../core/keys.js';
import type {
  ArtifactRecord,
  Catalog,
  DaemonRecord,
  KeyBinding,
  ListedReplica,
  ReplicaKey,
  ReplicaRecord,
  ReplicaState,
  ReplicaTier,
} from '../catalog.js';
import { backendError, checkFetchDelta } from '../catalog-checks.js';
import { DEFAULT_CALL_TIMEOUT_MS, type OpenCatalogOptions } from '../catalog-options.js';
import { isConnectionFailure, openPostgresPool, sqlState, type PostgresConnectionState } from './postgres-connection.js';
import { migrate } from './postgres-migrations.js';
import { SQL, type Statement } from './postgres-statements.js';
import { parsePostgresCatalogUrl, type PostgresCatalogUrl } from './postgres-url.js';

interface ArtifactRow {
  artifact_id: string;
  index_hash: string;
  data_hash: string;
  total_bytes: string;
  tensor_count: number;
  index_json: string;
  files_json: string;
  created_at: string;
}
interface KeyRow {
  key: string;
  artifact_id: string;
  version: string;
  updated_at: string;
}
interface ReplicaRow {
  artifact_id: string;
  view_id: string;
  daemon_id: string;
  tier: ReplicaTier;
  bytes: string;
  state: ReplicaState;
  active_fetches: number;
}
interface DaemonRow {
  daemon_id: string;
  control_url: string;
  data_address: string;
  advertise_host: string;
  state: DaemonRecord['state'];
  heartbeat_at: string;
}

const toArtifact = (r: ArtifactRow): ArtifactRecord => ({
  artifactId: r.artifact_id,
  indexHash: r.index_hash,
  dataHash: r.data_hash,
  totalBytes: Number(r.total_bytes),
  tensorCount: r.tensor_count,
  indexJson: r.index_json,
  files: JSON.parse(r.files_json) as string[],
  createdAt: Number(r.created_at),
});
const toKey = (r: KeyRow): KeyBinding => ({
  key: r.key,
  artifactId: r.artifact_id,
  version: Number(r.version),
  updatedAt: Number(r.updated_at),
});
const toReplica = (r: ReplicaRow): ListedReplica => ({
  artifactId: r.artifact_id,
  viewId: r.view_id === '' ? undefined : r.view_id,
  daemonId: r.daemon_id,
  tier: r.tier,
  bytes: Number(r.bytes),
  state: r.state,
  activeFetches: r.active_fetches,
});
const toDaemon = (r: DaemonRow): DaemonRecord => ({
  daemonId: r.daemon_id,
  controlUrl: r.control_url,
  dataAddress: r.data_address,
  advertiseHost: r.advertise_host,
  state: r.state,
  heartbeatAt: Number(r.heartbeat_at),
});
const rowValues = (r: ReplicaKey): string[] => [r.artifactId, r.viewId ?? '', r.daemonId, r.tier];

/**
 * A catalog in PostgreSQL (tables in one schema, default `tensorcast`).
 *
 * @example const catalog = await PostgresCatalog.open('postgres://tc:secret@db:5432/cluster?schema=prod');
 */
export class PostgresCatalog implements Catalog {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly url: PostgresCatalogUrl,
    private readonly state: PostgresConnectionState,
  ) {}

  /**
   * Opens a pool on `url` and migrates the schema (creating it when missing).
   *
   * @throws TC_ERR_CONFIG for a bad URL; TC_ERR_BACKEND when the server cannot be reached within the call
   * timeout, refuses the credentials, or holds a newer schema.
   */
  static async open(url: string, options: OpenCatalogOptions = {}): Promise<PostgresCatalog> {
    const parsed = parsePostgresCatalogUrl(url);
    const { pool, state } = await openPostgresPool({
      url: parsed,
      callTimeoutMs: options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      applicationName: 'tensorcast',
      names: { field: 'catalog', what: 'catalog' },
      log: options.log,
      setup: (client) => migrate(client, parsed.schema),
    });
    return new PostgresCatalog(pool, parsed, state);
  }

  /** Runs one named statement; a failure becomes TC_ERR_BACKEND (callers map the SQLSTATEs they expect first). */
  private async query<R extends pg.QueryResultRow>(op: string, statement: Statement, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      const result = await this.pool.query<R>({ name: statement.name, text: statement.text, values });
      this.state.restored();
      return result;
    } catch (error) {
      if (isConnectionFailure(error)) this.state.lost(error);
      throw Object.assign(backendError(op, this.url.redacted, error, this.url.password), { sqlState: sqlState(error) });
    }
  }

  async upsertDaemon(d: DaemonRecord): Promise<void> {
    await this.query('upsertDaemon', SQL.upsertDaemon, [d.daemonId, d.controlUrl, d.dataAddress, d.advertiseHost, d.state, d.heartbeatAt]);
  }

  async listDaemons(): Promise<DaemonRecord[]> {
    return (await this.query<DaemonRow>('listDaemons', SQL.listDaemons)).rows.map(toDaemon);
  }

  async putArtifact(a: ArtifactRecord): Promise<boolean> {
    const values = [a.artifactId, a.indexHash, a.dataHash, a.totalBytes, a.tensorCount, a.indexJson, JSON.stringify(a.files), a.createdAt];
    return (await this.query('putArtifact', SQL.insertArtifact, values)).rowCount === 1;
  }

  async getArtifact(artifactId: string): Promise<ArtifactRecord | undefined> {
    const row = (await this.query<ArtifactRow>('getArtifact', SQL.getArtifact, [artifactId])).rows[0];
    return row === undefined ? undefined : toArtifact(row);
  }

  async listArtifacts(): Promise<ArtifactRecord[]> {
    return (await this.query<ArtifactRow>('listArtifacts', SQL.listArtifacts)).rows.map(toArtifact);
  }

  async bindKey(key: string, artifactId: string, expectedVersion?: number | null): Promise<KeyBinding> {
    validateKey(key);
    const now = Date.now();
    const notFound = (): Error => tcError('TC_ERR_NOT_FOUND', `no artifact ${artifactId}`, { details: { artifactId } });
    let rows: { version: string }[];
    try {
      const result =
        expectedVersion === undefined
          ? await this.query<{ version: string }>('bindKey', SQL.bindKeyAny, [key, artifactId, now])
          : expectedVersion === null
            ? await this.query<{ version: string }>('bindKey', SQL.bindKeyCreate, [key, artifactId, now])
            : await this.query<{ version: string }>('bindKey', SQL.bindKeyAt, [key, artifactId, now, expectedVersion]);
      rows = result.rows;
    } catch (error) {
      // 23503: the foreign key to artifacts.
      if ((error as { sqlState?: string }).sqlState === '23503') throw notFound();
      throw error;
    }
    if (rows[0] !== undefined) return { key, artifactId, version: Number(rows[0].version), updatedAt: now };
    // Nothing changed: name why. Artifacts are never removed, so this check after the fact is exact.
    if ((await this.query('bindKey', SQL.artifactExists, [artifactId])).rowCount === 0) throw notFound();
    const current = (await this.query<KeyRow>('bindKey', SQL.getKey, [key])).rows[0];
    const why =
      current === undefined
        ? `expected version ${expectedVersion} but the key does not exist`
        : expectedVersion === null
          ? `already bound (version ${current.version})`
          : `expected version ${expectedVersion} but it is at ${current.version}`;
    throw tcError('TC_ERR_CONFLICT', `key '${key}': ${why}`, { details: { key } });
  }

  async resolveKey(key: string): Promise<KeyBinding | undefined> {
    const row = (await this.query<KeyRow>('resolveKey', SQL.getKey, [key])).rows[0];
    return row === undefined ? undefined : toKey(row);
  }

  async listKeys(): Promise<KeyBinding[]> {
    return (await this.query<KeyRow>('listKeys', SQL.listKeys)).rows.map(toKey);
  }

  async deleteKey(key: string, expectedVersion?: number): Promise<boolean> {
    if (expectedVersion === undefined) return (await this.query('deleteKey', SQL.deleteKey, [key])).rowCount === 1;
    if ((await this.query('deleteKey', SQL.deleteKeyAt, [key, expectedVersion])).rowCount === 1) return true;
    const current = (await this.query<KeyRow>('deleteKey', SQL.getKey, [key])).rows[0];
    if (current === undefined) return false;
    throw tcError('TC_ERR_CONFLICT', `key '${key}': expected version ${expectedVersion} but it is at ${current.version}`, {
      details: { key },
    });
  }

  async putReplica(r: ReplicaRecord): Promise<void> {
    await this.query('putReplica', SQL.putReplica, [...rowValues(r), r.bytes, r.state ?? 'published']);
  }

  async setReplicaState(r: ReplicaKey, state: ReplicaState): Promise<boolean> {
    return (await this.query('setReplicaState', SQL.setReplicaState, [...rowValues(r), state])).rowCount === 1;
  }

  async adjustReplicaFetches(r: ReplicaKey, delta: number): Promise<number | undefined> {
    checkFetchDelta(delta);
    const rows = (await this.query<{ active_fetches: number }>('adjustReplicaFetches', SQL.adjustReplicaFetches, [...rowValues(r), delta]))
      .rows;
    return rows[0]?.active_fetches;
  }

  async removeReplica(r: ReplicaKey): Promise<void> {
    await this.query('removeReplica', SQL.removeReplica, rowValues(r));
  }

  async listReplicas(artifactId?: string): Promise<ListedReplica[]> {
    const result =
      artifactId === undefined
        ? await this.query<ReplicaRow>('listReplicas', SQL.listReplicas)
        : await this.query<ReplicaRow>('listReplicas', SQL.listReplicasOf, [artifactId]);
    return result.rows.map(toReplica);
  }

  async removeDaemonReplicas(daemonId: string, tiers: readonly ReplicaTier[]): Promise<number> {
    return (await this.query('removeDaemonReplicas', SQL.removeDaemonReplicas, [daemonId, [...tiers]])).rowCount ?? 0;
  }

  /** Closes the pool once the calls in flight are done. */
  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}

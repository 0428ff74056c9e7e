// The embedded catalog: SQLite through better-sqlite3, a file in the data directory. WAL mode, schema
// migrations by `user_version`, statements prepared once. Compare-and-swap runs in one IMMEDIATE transaction;
// counters and states change in single UPDATE ... RETURNING statements.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
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
import { checkFetchDelta } from '../catalog-checks.js';

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE daemons (daemon_id TEXT PRIMARY KEY, control_url TEXT NOT NULL, data_address TEXT NOT NULL, heartbeat_at INTEGER NOT NULL);
   CREATE TABLE artifacts (artifact_id TEXT PRIMARY KEY, index_hash TEXT NOT NULL, data_hash TEXT NOT NULL, total_bytes INTEGER NOT NULL,
     tensor_count INTEGER NOT NULL, index_json TEXT NOT NULL, files_json TEXT NOT NULL, created_at INTEGER NOT NULL);
   CREATE TABLE keys (key TEXT PRIMARY KEY, artifact_id TEXT NOT NULL REFERENCES artifacts(artifact_id), version INTEGER NOT NULL, updated_at INTEGER NOT NULL);
   CREATE TABLE replicas (artifact_id TEXT NOT NULL, view_id TEXT NOT NULL, daemon_id TEXT NOT NULL, tier TEXT NOT NULL, bytes INTEGER NOT NULL,
     PRIMARY KEY (artifact_id, view_id, daemon_id, tier));`,
  // The cluster: a daemon's advertised host and state; a replica's state and active-fetch counter.
  `ALTER TABLE daemons ADD COLUMN advertise_host TEXT NOT NULL DEFAULT '';
   ALTER TABLE daemons ADD COLUMN state TEXT NOT NULL DEFAULT 'up';
   ALTER TABLE replicas ADD COLUMN state TEXT NOT NULL DEFAULT 'published';
   ALTER TABLE replicas ADD COLUMN active_fetches INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX replicas_by_daemon ON replicas (daemon_id);`,
];

interface ArtifactRow {
  artifact_id: string;
  index_hash: string;
  data_hash: string;
  total_bytes: number;
  tensor_count: number;
  index_json: string;
  files_json: string;
  created_at: number;
}
interface KeyRow {
  key: string;
  artifact_id: string;
  version: number;
  updated_at: number;
}
interface ReplicaRow {
  artifact_id: string;
  view_id: string;
  daemon_id: string;
  tier: ReplicaTier;
  bytes: number;
  state: ReplicaState;
  active_fetches: number;
}
interface DaemonRow {
  daemon_id: string;
  control_url: string;
  data_address: string;
  heartbeat_at: number;
  advertise_host: string;
  state: DaemonRecord['state'];
}

const toArtifact = (r: ArtifactRow): ArtifactRecord => ({
  artifactId: r.artifact_id,
  indexHash: r.index_hash,
  dataHash: r.data_hash,
  totalBytes: r.total_bytes,
  tensorCount: r.tensor_count,
  indexJson: r.index_json,
  files: JSON.parse(r.files_json) as string[],
  createdAt: r.created_at,
});
const toKey = (r: KeyRow): KeyBinding => ({ key: r.key, artifactId: r.artifact_id, version: r.version, updatedAt: r.updated_at });
const toReplica = (r: ReplicaRow): ListedReplica => ({
  artifactId: r.artifact_id,
  viewId: r.view_id === '' ? undefined : r.view_id,
  daemonId: r.daemon_id,
  tier: r.tier,
  bytes: r.bytes,
  state: r.state,
  activeFetches: r.active_fetches,
});
const toDaemon = (r: DaemonRow): DaemonRecord => ({
  daemonId: r.daemon_id,
  controlUrl: r.control_url,
  dataAddress: r.data_address,
  advertiseHost: r.advertise_host,
  state: r.state,
  heartbeatAt: r.heartbeat_at,
});
const ROW = 'artifact_id = ? AND view_id = ? AND daemon_id = ? AND tier = ?';
const rowArgs = (r: ReplicaKey): [string, string, string, string] => [r.artifactId, r.viewId ?? '', r.daemonId, r.tier];

/**
 * A catalog in one SQLite file (`:memory:` for tests).
 *
 * @example const catalog = SqliteCatalog.open('/var/lib/tensorcast/catalog.db');
 */
export class SqliteCatalog implements Catalog {
  private readonly db: Database.Database;
  private readonly stmt;

  private constructor(db: Database.Database) {
    this.db = db;
    const p = <R = unknown>(sql: string) => db.prepare<unknown[], R>(sql);
    this.stmt = {
      upsertDaemon: p(
        `INSERT INTO daemons (daemon_id, control_url, data_address, heartbeat_at, advertise_host, state) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(daemon_id) DO UPDATE SET control_url = excluded.control_url, data_address = excluded.data_address,
         heartbeat_at = excluded.heartbeat_at, advertise_host = excluded.advertise_host, state = excluded.state`,
      ),
      listDaemons: p<DaemonRow>('SELECT * FROM daemons ORDER BY daemon_id'),
      insertArtifact: p(
        `INSERT OR IGNORE INTO artifacts (artifact_id, index_hash, data_hash, total_bytes, tensor_count, index_json, files_json, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      getArtifact: p<ArtifactRow>('SELECT * FROM artifacts WHERE artifact_id = ?'),
      listArtifacts: p<ArtifactRow>('SELECT * FROM artifacts ORDER BY created_at, artifact_id'),
      getKey: p<KeyRow>('SELECT * FROM keys WHERE key = ?'),
      insertKey: p('INSERT INTO keys (key, artifact_id, version, updated_at) VALUES (?, ?, 1, ?)'),
      updateKey: p('UPDATE keys SET artifact_id = ?, version = version + 1, updated_at = ? WHERE key = ? AND version = ?'),
      listKeys: p<KeyRow>('SELECT * FROM keys ORDER BY key'),
      deleteKey: p('DELETE FROM keys WHERE key = ?'),
      deleteKeyAt: p('DELETE FROM keys WHERE key = ? AND version = ?'),
      // An existing row keeps its active-fetch counter (INSERT OR REPLACE would reset it).
      putReplica: p(
        `INSERT INTO replicas (artifact_id, view_id, daemon_id, tier, bytes, state) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(artifact_id, view_id, daemon_id, tier) DO UPDATE SET bytes = excluded.bytes, state = excluded.state`,
      ),
      setReplicaState: p(`UPDATE replicas SET state = ? WHERE ${ROW}`),
      adjustReplicaFetches: p<{ active_fetches: number }>(
        `UPDATE replicas SET active_fetches = MAX(0, active_fetches + ?) WHERE ${ROW} RETURNING active_fetches`,
      ),
      removeReplica: p(`DELETE FROM replicas WHERE ${ROW}`),
      listReplicas: p<ReplicaRow>('SELECT * FROM replicas ORDER BY artifact_id, view_id, daemon_id, tier'),
      removeDaemonReplicas: p(`DELETE FROM replicas WHERE daemon_id = ? AND tier IN (SELECT value FROM json_each(?))`),
      listReplicasOf: p<ReplicaRow>('SELECT * FROM replicas WHERE artifact_id = ? ORDER BY view_id, daemon_id, tier'),
    };
  }

  /** Opens (creating and migrating) the catalog at `path`. @throws TC_ERR_BACKEND */
  static open(path: string): SqliteCatalog {
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > MIGRATIONS.length) {
        throw tcError('TC_ERR_BACKEND', `${path}: catalog schema version ${version} is newer than this tensorcast (${MIGRATIONS.length})`);
      }
      for (let v = version; v < MIGRATIONS.length; v++) {
        db.transaction(() => {
          db.exec(MIGRATIONS[v]!);
          db.pragma(`user_version = ${v + 1}`);
        })();
      }
      return new SqliteCatalog(db);
    } catch (error) {
      if (error instanceof Error && 'code' in error && String(error.code).startsWith('TC_ERR')) throw error;
      throw tcError('TC_ERR_BACKEND', `cannot open the SQLite catalog at ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  private run<T>(what: string, fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (error) {
      if (error instanceof Error && 'code' in error && String(error.code).startsWith('TC_ERR')) return Promise.reject(error);
      return Promise.reject(tcError('TC_ERR_BACKEND', `catalog ${what}: ${(error as Error).message}`, { cause: error }));
    }
  }

  upsertDaemon(d: DaemonRecord): Promise<void> {
    return this.run(
      'upsertDaemon',
      () => void this.stmt.upsertDaemon.run(d.daemonId, d.controlUrl, d.dataAddress, d.heartbeatAt, d.advertiseHost, d.state),
    );
  }

  listDaemons(): Promise<DaemonRecord[]> {
    return this.run('listDaemons', () => this.stmt.listDaemons.all().map(toDaemon));
  }

  putArtifact(a: ArtifactRecord): Promise<boolean> {
    return this.run(
      'putArtifact',
      () =>
        this.stmt.insertArtifact.run(
          a.artifactId,
          a.indexHash,
          a.dataHash,
          a.totalBytes,
          a.tensorCount,
          a.indexJson,
          JSON.stringify(a.files),
          a.createdAt,
        ).changes === 1,
    );
  }

  getArtifact(artifactId: string): Promise<ArtifactRecord | undefined> {
    return this.run('getArtifact', () => {
      const r = this.stmt.getArtifact.get(artifactId);
      return r === undefined ? undefined : toArtifact(r);
    });
  }

  listArtifacts(): Promise<ArtifactRecord[]> {
    return this.run('listArtifacts', () => this.stmt.listArtifacts.all().map(toArtifact));
  }

  bindKey(key: string, artifactId: string, expectedVersion?: number | null): Promise<KeyBinding> {
    return this.run('bindKey', () =>
      this.db
        .transaction((): KeyBinding => {
          validateKey(key);
          if (this.stmt.getArtifact.get(artifactId) === undefined) {
            throw tcError('TC_ERR_NOT_FOUND', `no artifact ${artifactId}`, { details: { artifactId } });
          }
          const now = Date.now();
          const current = this.stmt.getKey.get(key);
          const conflict = (why: string): Error => tcError('TC_ERR_CONFLICT', `key '${key}': ${why}`, { details: { key } });
          if (current === undefined) {
            if (typeof expectedVersion === 'number') throw conflict(`expected version ${expectedVersion} but the key does not exist`);
            this.stmt.insertKey.run(key, artifactId, now);
            return { key, artifactId, version: 1, updatedAt: now };
          }
          if (expectedVersion === null) throw conflict(`already bound (version ${current.version})`);
          const at = expectedVersion ?? current.version;
          if (this.stmt.updateKey.run(artifactId, now, key, at).changes !== 1)
            throw conflict(`expected version ${at} but it is at ${current.version}`);
          return { key, artifactId, version: at + 1, updatedAt: now };
          // IMMEDIATE: take the write lock before reading, so a concurrent writer waits (busy_timeout) and then
          // sees the new version; a deferred transaction would fail its lock upgrade with SQLITE_BUSY.
        })
        .immediate(),
    );
  }

  resolveKey(key: string): Promise<KeyBinding | undefined> {
    return this.run('resolveKey', () => {
      const r = this.stmt.getKey.get(key);
      return r === undefined ? undefined : toKey(r);
    });
  }

  listKeys(): Promise<KeyBinding[]> {
    return this.run('listKeys', () => this.stmt.listKeys.all().map(toKey));
  }

  deleteKey(key: string, expectedVersion?: number): Promise<boolean> {
    return this.run('deleteKey', () =>
      this.db
        .transaction((): boolean => {
          if (expectedVersion === undefined) return this.stmt.deleteKey.run(key).changes === 1;
          const current = this.stmt.getKey.get(key);
          if (current === undefined) return false;
          if (this.stmt.deleteKeyAt.run(key, expectedVersion).changes !== 1) {
            throw tcError('TC_ERR_CONFLICT', `key '${key}': expected version ${expectedVersion} but it is at ${current.version}`, {
              details: { key },
            });
          }
          return true;
        })
        .immediate(),
    );
  }

  putReplica(r: ReplicaRecord): Promise<void> {
    return this.run('putReplica', () => void this.stmt.putReplica.run(...rowArgs(r), r.bytes, r.state ?? 'published'));
  }

  setReplicaState(r: ReplicaKey, state: ReplicaState): Promise<boolean> {
    return this.run('setReplicaState', () => this.stmt.setReplicaState.run(state, ...rowArgs(r)).changes === 1);
  }

  adjustReplicaFetches(r: ReplicaKey, delta: number): Promise<number | undefined> {
    return this.run('adjustReplicaFetches', () => {
      checkFetchDelta(delta);
      return this.stmt.adjustReplicaFetches.get(delta, ...rowArgs(r))?.active_fetches;
    });
  }

  removeReplica(r: ReplicaKey): Promise<void> {
    return this.run('removeReplica', () => void this.stmt.removeReplica.run(...rowArgs(r)));
  }

  listReplicas(artifactId?: string): Promise<ListedReplica[]> {
    return this.run('listReplicas', () =>
      (artifactId === undefined ? this.stmt.listReplicas.all() : this.stmt.listReplicasOf.all(artifactId)).map(toReplica),
    );
  }

  removeDaemonReplicas(daemonId: string, tiers: readonly ReplicaTier[]): Promise<number> {
    return this.run('removeDaemonReplicas', () => this.stmt.removeDaemonReplicas.run(daemonId, JSON.stringify(tiers)).changes);
  }

  close(): Promise<void> {
    return this.run('close', () => void this.db.close());
  }
}

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openCatalog } from '../../src/catalog/open-catalog.js';
import { SqliteCatalog } from '../../src/catalog/sqlite/sqlite-catalog.js';
import { tempDir } from '../helpers/tmp.js';
import { runCatalogContract } from './catalog-contract.js';

runCatalogContract('sqlite :memory:', () => Promise.resolve(SqliteCatalog.open(':memory:')), {
  sharedUrl: (t) => `sqlite://${join(tempDir(t), 'catalog.db')}`,
});

test('sqlite catalog: keys survive reopening the file; unknown schemes are config errors', async (t) => {
  const path = join(tempDir(t), 'sub', 'catalog.db');
  const c = await openCatalog(`sqlite://${path}`);
  await c.putArtifact({
    artifactId: 'a',
    indexHash: 'i',
    dataHash: 'd',
    totalBytes: 1,
    tensorCount: 1,
    indexJson: '{}',
    files: [],
    createdAt: 1,
  });
  await c.bindKey('k', 'a');
  await c.close();
  const again = await openCatalog(`sqlite://${path}`);
  assert.equal((await again.resolveKey('k'))?.artifactId, 'a');
  await again.close();
  await assert.rejects(openCatalog('mysql://x'), { code: 'TC_ERR_CONFIG' });
});

test('sqlite catalog: a catalog of schema version 1 migrates and keeps its rows', async (t) => {
  const path = join(tempDir(t), 'catalog.db');
  const old = new Database(path);
  old.exec(`CREATE TABLE daemons (daemon_id TEXT PRIMARY KEY, control_url TEXT NOT NULL, data_address TEXT NOT NULL, heartbeat_at INTEGER NOT NULL);
    CREATE TABLE artifacts (artifact_id TEXT PRIMARY KEY, index_hash TEXT NOT NULL, data_hash TEXT NOT NULL, total_bytes INTEGER NOT NULL,
      tensor_count INTEGER NOT NULL, index_json TEXT NOT NULL, files_json TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE keys (key TEXT PRIMARY KEY, artifact_id TEXT NOT NULL REFERENCES artifacts(artifact_id), version INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE replicas (artifact_id TEXT NOT NULL, view_id TEXT NOT NULL, daemon_id TEXT NOT NULL, tier TEXT NOT NULL, bytes INTEGER NOT NULL,
      PRIMARY KEY (artifact_id, view_id, daemon_id, tier));
    INSERT INTO daemons VALUES ('d1', 'http://127.0.0.1:7070', '127.0.0.1:7071', 5);
    INSERT INTO artifacts VALUES ('a', 'i', 'd', 1, 1, '{}', '[]', 1);
    INSERT INTO keys VALUES ('k', 'a', 3, 2);
    INSERT INTO replicas VALUES ('a', '', 'd1', 'disk', 1);
    PRAGMA user_version = 1;`);
  old.close();
  const c = await openCatalog(`sqlite://${path}`);
  t.after(() => c.close());
  assert.deepEqual(await c.listDaemons(), [
    { daemonId: 'd1', controlUrl: 'http://127.0.0.1:7070', dataAddress: '127.0.0.1:7071', advertiseHost: '', state: 'up', heartbeatAt: 5 },
  ]);
  assert.equal((await c.resolveKey('k'))?.version, 3);
  const row = { artifactId: 'a', viewId: undefined, daemonId: 'd1', tier: 'disk' } as const;
  assert.deepEqual(await c.listReplicas(), [{ ...row, bytes: 1, state: 'published', activeFetches: 0 }]);
  assert.equal(await c.adjustReplicaFetches(row, 1), 1);
  const db = new Database(path, { readonly: true });
  t.after(() => db.close());
  assert.equal(db.pragma('user_version', { simple: true }), 2);
});

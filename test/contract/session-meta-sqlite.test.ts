// The session metadata contract on SQLite (a fresh file per test, opened by several instances and processes),
// plus what is SQLite's own: a reopened file holds every session as last committed; a bad file is a backend error.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { test } from 'node:test';
import { geometryHash, type SessionGeometry } from '../../src/sessions/geometry.js';
import { openSessionMetaStore } from '../../src/sessions/meta/open-session-meta-store.js';
import { tempDir } from '../helpers/tmp.js';
import { runSessionMetaContract } from './session-meta-contract.js';
import { raceEntry } from './session-meta-race.js';

runSessionMetaContract(
  'sqlite',
  (t) => {
    const url = `sqlite://${join(tempDir(t, 'tc-session-meta-'), 'sub', 'sessions.db')}`;
    return Promise.resolve({ url, open: () => openSessionMetaStore(url) });
  },
  { processes: true },
);

const geometry: SessionGeometry = { modelId: 'm', layers: 1, kvHeads: 1, headDim: 8, dtype: 'F32', tokensPerPage: 1 };

test('sqlite session meta: a reopened file holds every session as last committed', async (t) => {
  const url = `sqlite://${join(tempDir(t), 'sessions.db')}`;
  const first = await openSessionMetaStore(url);
  await first.create('kept', geometry, geometryHash(geometry));
  const lease = await first.acquire('kept', 'a', 60_000);
  const written = await first.update(lease, 0, { entries: [{ ...raceEntry(0, 'u'), hot: { holder: 'a' } }], tokens: 1 });
  await first.close();
  const second = await openSessionMetaStore(url);
  try {
    assert.deepEqual(await second.get('kept'), written);
    await assert.rejects(second.acquire('kept', 'b', 1000), (e: { code?: string }) => e.code === 'TC_ERR_CONFLICT');
  } finally {
    await second.close();
  }
});

test('sqlite session meta: a file that is not a database is TC_ERR_BACKEND; a closed store refuses calls', async (t) => {
  const path = join(tempDir(t), 'junk.db');
  writeFileSync(path, 'this is not a sqlite database, just some text that is long enough to look like a header...');
  await assert.rejects(openSessionMetaStore(`sqlite://${path}`), (e: { code?: string }) => e.code === 'TC_ERR_BACKEND');
  await assert.rejects(openSessionMetaStore('sqlite://'), (e: { code?: string }) => e.code === 'TC_ERR_CONFIG');
  const store = await openSessionMetaStore(`sqlite://${join(tempDir(t), 'ok.db')}`);
  await store.close();
  await assert.rejects(store.list(), (e: { code?: string }) => e.code === 'TC_ERR_SHUTTING_DOWN');
});

test('sqlite session meta: a write lock held past the call timeout is TC_ERR_BACKEND, and nothing changed', async (t) => {
  const path = join(tempDir(t), 'locked.db');
  const store = await openSessionMetaStore(`sqlite://${path}`, { callTimeoutMs: 50 });
  await store.create('c', geometry, geometryHash(geometry));
  const other = new Database(path);
  try {
    other.exec('BEGIN IMMEDIATE');
    const error = await store.acquire('c', 'a', 60_000).then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e as { code?: string; retryable?: boolean },
    );
    assert.equal(error.code, 'TC_ERR_BACKEND');
    assert.equal(error.retryable, true);
    other.exec('ROLLBACK');
    assert.equal((await store.get('c'))?.fence, 0);
    assert.equal((await store.acquire('c', 'a', 60_000)).fence, 1);
  } finally {
    other.close();
    await store.close();
  }
});

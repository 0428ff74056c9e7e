// The handshake store contract on a real PostgreSQL (harness: TENSORCAST_TEST_POSTGRES_URL, else initdb +
// postgres from PATH), each test in its own schema, two store instances (two listeners) per namespace; plus
// what is PostgreSQL's own: the tables are created once however many listeners start at once.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { isTensorcastError } from '../../src/core/errors.js';
import { HANDSHAKE_MIGRATIONS } from '../../src/handshake/store/postgres-handshake-schema.js';
import { openHandshakeStore } from '../../src/handshake/store/open-handshake-store.js';
import { postgresCatalogUrl } from '../harness/services.js';
import { runHandshakeStoreContract } from './handshake-store-contract.js';

runHandshakeStoreContract('postgres', async (t) => {
  const url = await postgresCatalogUrl(t);
  return url === undefined ? undefined : (options) => openHandshakeStore(url, options);
});

test('postgres handshake store: listeners opening at once create the tables once, in the URL schema', async (t) => {
  const url = await postgresCatalogUrl(t);
  if (url === undefined) return;
  const schema = new URL(url).searchParams.get('schema');
  const stores = await Promise.all(Array.from({ length: 4 }, () => openHandshakeStore(url)));
  const base = new URL(url);
  base.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: base.toString() });
  await client.connect();
  try {
    assert.ok(stores.every((s) => s.kind === 'postgres'));
    const { rows } = await client.query<{ n: number }>(`SELECT count(*)::integer AS n FROM "${schema}".handshake_migrations`);
    assert.equal(rows[0]?.n, HANDSHAKE_MIGRATIONS.length);
    const tables = await client.query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
      [schema],
    );
    assert.deepEqual(
      tables.rows.map((r) => r.table_name),
      ['handshake_migrations', 'handshake_ranks'],
    );
  } finally {
    await client.end();
    for (const store of stores) await store.close();
  }
});

test('postgres handshake store: once forgotten and swept, no row of the engine is left', async (t) => {
  const url = await postgresCatalogUrl(t);
  if (url === undefined) return;
  const schema = new URL(url).searchParams.get('schema');
  const store = await openHandshakeStore(url, { expiredGraceMs: 100 });
  const base = new URL(url);
  base.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: base.toString() });
  await client.connect();
  const rows = async (): Promise<number> =>
    (await client.query<{ n: number }>(`SELECT count(*)::integer AS n FROM "${schema}".handshake_ranks`)).rows[0]?.n ?? -1;
  try {
    for (const tp of [0, 1]) {
      await store.publish(
        { engineId: 'gone', tpRank: tp, dpRank: 0, incarnation: 'i', compatibilityHash: 'h', tpSize: 2, payload: Buffer.from([tp]) },
        { ttlMs: 100, maxEngineBytes: 100 },
      );
    }
    assert.equal(await rows(), 2);
    const deadline = Date.now() + 30_000;
    while ((await store.rank('gone', 1, 0)).state !== 'missing') {
      assert.ok(Date.now() < deadline, 'the rank was never forgotten');
      await sleep(20);
    }
    await store.sweep();
    assert.equal(await rows(), 0);
  } finally {
    await client.end();
    await store.close();
  }
});

test('postgres handshake store: an unreachable server is TC_ERR_BACKEND at open, without the password', async () => {
  await assert.rejects(openHandshakeStore('postgres://u:hunter22@127.0.0.1:1/x', { callTimeoutMs: 2000 }), (error: unknown) => {
    assert.ok(isTensorcastError(error, 'TC_ERR_BACKEND'), String(error));
    assert.ok(!error.message.includes('hunter22'), error.message);
    return true;
  });
});

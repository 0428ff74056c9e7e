// The catalog contract on a real PostgreSQL (harness: TENSORCAST_TEST_POSTGRES_URL, else initdb + postgres
// from PATH), each test in its own schema; plus what is PostgreSQL's own: URL forms, migrations.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { openCatalog } from '../../src/catalog/open-catalog.js';
import { MIGRATIONS } from '../../src/catalog/postgres/postgres-migrations.js';
import { parsePostgresCatalogUrl } from '../../src/catalog/postgres/postgres-url.js';
import { postgresCatalogUrl } from '../harness/services.js';
import { runCatalogContract } from './catalog-contract.js';

runCatalogContract(
  'postgres',
  async (t) => {
    const url = await postgresCatalogUrl(t);
    return url === undefined ? undefined : openCatalog(url);
  },
  { sharedUrl: postgresCatalogUrl },
);

test('postgres catalog: URL forms; a bad one is a config error that never shows the password', () => {
  assert.deepEqual(parsePostgresCatalogUrl('postgresql://tc:s%40cret@db:5433/cluster?schema=prod_1&sslmode=require'), {
    connectionString: 'postgresql://tc:s%40cret@db:5433/cluster?sslmode=require',
    schema: 'prod_1',
    password: 's@cret',
    redacted: 'postgresql://tc:***@db:5433/cluster?schema=prod_1&sslmode=require',
  });
  assert.equal(parsePostgresCatalogUrl('postgres://db/x').schema, 'tensorcast');
  for (const bad of ['postgres://u:hunter22@db/x?schema=Bad', 'postgres://u:hunter22@db/x?schema=a-b', 'mysql://u:hunter22@db/x']) {
    assert.throws(
      () => parsePostgresCatalogUrl(bad),
      (e: Error & { code?: string }) => e.code === 'TC_ERR_CONFIG' && !e.message.includes('hunter22'),
      bad,
    );
  }
});

test('postgres catalog: daemons opening a fresh schema at once migrate it exactly once', async (t) => {
  const url = await postgresCatalogUrl(t);
  if (url === undefined) return;
  const catalogs = await Promise.all(Array.from({ length: 5 }, () => openCatalog(url)));
  t.after(() => Promise.all(catalogs.map((c) => c.close())));
  const schema = new URL(url).searchParams.get('schema')!;
  const client = new pg.Client({ connectionString: url.split('?')[0] });
  await client.connect();
  t.after(() => client.end());
  const { rows } = await client.query<{ version: number }>(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
  assert.deepEqual(
    rows.map((r) => r.version),
    MIGRATIONS.map((_, i) => i + 1),
  );
  // Nothing of the catalog lands in public.
  const tables = await client.query<{ table_schema: string }>(
    `SELECT DISTINCT table_schema FROM information_schema.tables WHERE table_name IN ('daemons', 'artifacts', 'keys', 'replicas') AND table_schema = $1`,
    [schema],
  );
  assert.deepEqual(
    tables.rows.map((r) => r.table_schema),
    [schema],
  );
});

test('postgres catalog: a schema at a newer version is refused', async (t) => {
  const url = await postgresCatalogUrl(t);
  if (url === undefined) return;
  await (await openCatalog(url)).close();
  const schema = new URL(url).searchParams.get('schema')!;
  const client = new pg.Client({ connectionString: url.split('?')[0] });
  await client.connect();
  t.after(() => client.end());
  await client.query(`INSERT INTO "${schema}".schema_migrations (version) VALUES (999)`);
  await assert.rejects(openCatalog(url), (e: Error & { code?: string }) => e.code === 'TC_ERR_BACKEND' && /version 999/.test(e.message));
});

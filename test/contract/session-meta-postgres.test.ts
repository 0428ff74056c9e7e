// The session metadata contract on a real PostgreSQL (harness: TENSORCAST_TEST_POSTGRES_URL, else a cluster
// started from PATH), each test in its own schema; plus what is PostgreSQL's own: the table is created in the
// URL's schema, and an outage is TC_ERR_BACKEND (retryable) that ends when the server is back.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { geometryHash, type SessionGeometry } from '../../src/sessions/geometry.js';
import { openSessionMetaStore } from '../../src/sessions/meta/open-session-meta-store.js';
import { postgresCatalogUrl, privatePostgres } from '../harness/services.js';
import { runSessionMetaContract } from './session-meta-contract.js';

runSessionMetaContract(
  'postgres',
  async (t) => {
    const url = await postgresCatalogUrl(t);
    return url === undefined ? undefined : { url, open: () => openSessionMetaStore(url) };
  },
  { processes: true },
);

const geometry: SessionGeometry = { modelId: 'm', layers: 1, kvHeads: 1, headDim: 8, dtype: 'F32', tokensPerPage: 1 };

test('postgres session meta: the table lives in the URL schema; two stores opening at once both work', async (t) => {
  const url = await postgresCatalogUrl(t);
  if (url === undefined) return;
  const [a, b] = await Promise.all([openSessionMetaStore(url), openSessionMetaStore(url)]);
  const schema = new URL(url).searchParams.get('schema')!;
  const raw = new pg.Client({ connectionString: url.replace(/\?.*$/, '') });
  await raw.connect();
  try {
    await a.create('x', geometry, geometryHash(geometry));
    assert.equal((await b.get('x'))?.sessionId, 'x');
    const { rows } = await raw.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".tc_sessions`);
    assert.equal(rows[0]?.n, '1');
  } finally {
    await raw.end();
    await a.close();
    await b.close();
  }
});

test('postgres session meta: an outage is TC_ERR_BACKEND (retryable); calls succeed again once the server is back', async (t) => {
  const server = await privatePostgres(t);
  if (server === undefined) return;
  const store = await openSessionMetaStore(`${server.url}?schema=outage`, { callTimeoutMs: 2000 });
  try {
    await store.create('a', geometry, geometryHash(geometry));
    await server.stop();
    const error = await store.acquire('a', 'o', 60_000).then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e as { code?: string; retryable?: boolean },
    );
    assert.equal(error.code, 'TC_ERR_BACKEND');
    assert.equal(error.retryable, true);
    await server.start();
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        assert.equal((await store.acquire('a', 'o', 60_000)).fence, 1);
        break;
      } catch (e) {
        if ((e as { code?: string }).code !== 'TC_ERR_BACKEND' || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await store.close();
  }
});

// The session metadata contract on a real Redis (harness: TENSORCAST_TEST_REDIS_URL, else redis-server from
// PATH), each test under its own key prefix; plus what is Redis's own: the key layout under the prefix, and an
// outage is TC_ERR_BACKEND (retryable) that ends when the server is back.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient } from 'redis';
import { geometryHash, type SessionGeometry } from '../../src/sessions/geometry.js';
import { openSessionMetaStore } from '../../src/sessions/meta/open-session-meta-store.js';
import { privateRedis, redisCatalogUrl } from '../harness/services.js';
import { runSessionMetaContract } from './session-meta-contract.js';

runSessionMetaContract(
  'redis',
  async (t) => {
    const url = await redisCatalogUrl(t);
    return url === undefined ? undefined : { url, open: () => openSessionMetaStore(url) };
  },
  { processes: true },
);

const geometry: SessionGeometry = { modelId: 'm', layers: 1, kvHeads: 1, headDim: 8, dtype: 'F32', tokensPerPage: 1 };

test('redis session meta: every key lives under <prefix>sessions:', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const store = await openSessionMetaStore(url);
  const prefix = new URL(url).searchParams.get('prefix')!;
  const raw = createClient({ url: url.replace(/\?.*$/, '') });
  await raw.connect();
  try {
    await store.create('a', geometry, geometryHash(geometry));
    await store.acquire('a', 'o', 60_000);
    const keys = (await raw.keys(`${prefix}*`)).sort();
    assert.deepEqual(keys, [`${prefix}sessions:ids`, `${prefix}sessions:s:a`]);
  } finally {
    await raw.close();
    await store.close();
  }
});

test('redis session meta: an outage is TC_ERR_BACKEND (retryable); calls succeed again once the server is back', async (t) => {
  const server = await privateRedis(t, { persistent: true });
  if (server === undefined) return;
  const store = await openSessionMetaStore(`${server.url}?prefix=outage:`, { callTimeoutMs: 2000 });
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
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        assert.equal((await store.acquire('a', 'o', 60_000)).fence, 1);
        break;
      } catch (e) {
        if ((e as { code?: string }).code !== 'TC_ERR_BACKEND' || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } finally {
    await store.close();
  }
});

// The handshake store contract on a real Redis (harness: TENSORCAST_TEST_REDIS_URL, else redis-server from
// PATH), each test under its own key prefix, two store instances (two listeners) per namespace; plus what is
// Redis's own: the keys live under `<prefix>handshake:` and expire by themselves after the grace period.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { isTensorcastError } from '../../src/core/errors.js';
import { openHandshakeStore } from '../../src/handshake/store/open-handshake-store.js';
import { redisCatalogUrl } from '../harness/services.js';
import { runHandshakeStoreContract } from './handshake-store-contract.js';

runHandshakeStoreContract('redis', async (t) => {
  const url = await redisCatalogUrl(t);
  return url === undefined ? undefined : (options) => openHandshakeStore(url, options);
});

test('redis handshake store: keys under <prefix>handshake:, each rank key expiring at expiry + grace', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const store = await openHandshakeStore(url, { expiredGraceMs: 5000 });
  const prefix = new URL(url).searchParams.get('prefix') ?? '';
  const raw = createClient({ url: url.replace(/\?.*$/, '') });
  raw.on('error', () => undefined);
  await raw.connect();
  try {
    assert.equal(store.kind, 'redis');
    const published = await store.publish(
      { engineId: 'e:1', tpRank: 3, dpRank: 1, incarnation: 'i', compatibilityHash: 'h', tpSize: 4, payload: Buffer.from([0, 255]) },
      { ttlMs: 60_000, maxEngineBytes: 100 },
    );
    const keys = [];
    for await (const batch of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) keys.push(...batch);
    assert.deepEqual(keys.sort(), [`${prefix}handshake:engines`, `${prefix}handshake:rank:e:1:3/1`, `${prefix}handshake:ranks:e:1`]);
    const expireAt = await raw.pExpireTime(`${prefix}handshake:rank:e:1:3/1`);
    assert.equal(expireAt, published.expiresAtMs + 5000);
  } finally {
    raw.destroy();
    await store.close();
  }
});

test('redis handshake store: once forgotten and swept, no key of the engine is left', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const store = await openHandshakeStore(url, { expiredGraceMs: 100 });
  const prefix = new URL(url).searchParams.get('prefix') ?? '';
  const raw = createClient({ url: url.replace(/\?.*$/, '') });
  raw.on('error', () => undefined);
  await raw.connect();
  const keys = async (): Promise<string[]> => {
    const out = [];
    for await (const batch of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) out.push(...batch);
    return out.sort();
  };
  try {
    for (const tp of [0, 1]) {
      await store.publish(
        { engineId: 'gone', tpRank: tp, dpRank: 0, incarnation: 'i', compatibilityHash: 'h', tpSize: 2, payload: Buffer.from([tp]) },
        { ttlMs: 100, maxEngineBytes: 100 },
      );
    }
    assert.equal((await keys()).length, 4);
    const deadline = Date.now() + 30_000;
    while ((await store.rank('gone', 1, 0)).state !== 'missing') {
      assert.ok(Date.now() < deadline, 'the rank was never forgotten');
      await sleep(20);
    }
    await store.sweep();
    assert.deepEqual(await keys(), []);
  } finally {
    raw.destroy();
    await store.close();
  }
});

test('redis handshake store: an unreachable server is TC_ERR_BACKEND at open, without the password', async () => {
  await assert.rejects(openHandshakeStore('redis://:hunter22@127.0.0.1:1/0', { callTimeoutMs: 2000 }), (error: unknown) => {
    assert.ok(isTensorcastError(error, 'TC_ERR_BACKEND'), String(error));
    assert.ok(!error.message.includes('hunter22'), error.message);
    return true;
  });
});

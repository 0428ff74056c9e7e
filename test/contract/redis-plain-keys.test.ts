// Plain Redis keys (the SGLang layout's writer) on a real Redis: staged values stay invisible until the
// commit, which swaps in the new set and removes the replaced keys in one transaction; a discarded or
// abandoned batch leaves only expiring staging keys, or none; a value above the server's limit and refused
// credentials are coded errors that never show the password.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, RESP_TYPES } from 'redis';
import { RedisPlainKeys } from '../../src/connectors/redis/redis-plain-keys.js';
import { privateRedis, redisConnectorUrl } from '../harness/services.js';
import { rejectsWith } from './connector-contract.js';

async function rawRedis(url: string) {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  const client = createClient({
    socket: { host: u.hostname, port: Number(u.port || 6379) },
    database: Number(u.searchParams.get('db') ?? 0),
    ...(password === '' ? {} : { password }),
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

test('redis plain keys: a batch is invisible until commit, which replaces the obsolete keys at once', async (t) => {
  const url = await redisConnectorUrl(t);
  if (url === undefined) return;
  const space = await RedisPlainKeys.open(url);
  const raw = await rawRedis(url);
  t.after(async () => {
    await space.close();
    raw.destroy();
  });
  const m = space.prefix;
  assert.ok(space.maxValueBytes >= 1024 * 1024);
  await raw.set(`${m}/keys/a`, 'old-a');
  await raw.set(`${m}/keys/b`, 'old-b');

  const batch = space.batch();
  await batch.set(`${m}/keys/a`, Buffer.from([0, 1, 2, 255]));
  await batch.set(`${m}/keys/c`, 'new-c');
  // Before the commit readers see the old keys only; the staged values expire unless committed.
  assert.deepEqual(await space.keys(`${m}/keys/`), [`${m}/keys/a`, `${m}/keys/b`]);
  assert.equal(await raw.get(`${m}/keys/a`), 'old-a');
  const staged = await raw.keys(`${m}/.tc/s/*`);
  assert.equal(staged.length, 2);
  for (const k of staged) assert.ok((await raw.pTTL(k)) > 0, k);

  await batch.commit(await space.keys(`${m}/keys/`));
  assert.deepEqual(await space.keys(`${m}/`), [`${m}/keys/a`, `${m}/keys/c`]);
  const a = await raw.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).get(`${m}/keys/a`);
  assert.deepEqual([...a!], [0, 1, 2, 255]);
  assert.equal(await raw.get(`${m}/keys/c`), 'new-c');
  assert.equal(await raw.ttl(`${m}/keys/a`), -1);
  assert.equal(await raw.ttl(`${m}/keys/c`), -1);

  // A discarded batch leaves nothing, and changes nothing.
  const dropped = space.batch();
  await dropped.set(`${m}/keys/c`, 'never');
  await dropped.discard();
  assert.deepEqual(await space.keys(`${m}/`), [`${m}/keys/a`, `${m}/keys/c`]);
  assert.equal(await raw.get(`${m}/keys/c`), 'new-c');
});

test('redis plain keys: a value above proto-max-bulk-len and refused credentials are coded errors', async (t) => {
  const server = await privateRedis(t, { password: 'hunter22-secret' });
  if (server === undefined) return;
  const good = `${server.url}/model`;
  const space = await RedisPlainKeys.open(good);
  t.after(() => space.close());
  const raw = await rawRedis(good);
  t.after(() => raw.destroy());
  await raw.configSet('proto-max-bulk-len', String(1024 * 1024));
  const small = await RedisPlainKeys.open(good);
  t.after(() => small.close());
  assert.equal(small.maxValueBytes, 1024 * 1024);
  const batch = small.batch();
  await rejectsWith(batch.set('model/keys/big', new Uint8Array(1024 * 1024 + 1)), 'TC_ERR_INVALID_ARGUMENT', /proto-max-bulk-len/);
  await batch.discard();

  const wrong = new URL(good);
  wrong.password = 'not-the-password';
  await assert.rejects(RedisPlainKeys.open(wrong.toString(), { retry: { attempts: 1 } }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'TC_ERR_AUTH');
    assert.ok(!e.message.includes('not-the-password') && !e.message.includes('hunter22'), e.message);
    return true;
  });
});

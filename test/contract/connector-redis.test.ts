// The connector contract on a real Redis (TENSORCAST_TEST_REDIS_URL, else redis-server from PATH), each test
// under its own key prefix; plus what is Redis's own: URL forms, the key layout, credentials, TLS, lost
// chunks, and a server restarted in the middle of reads.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { createConnector } from '../../src/connectors/create-connector.js';
import { parseRedisConnectorUrl } from '../../src/connectors/redis/redis-connector-url.js';
import { privateRedis, redisConnectorUrl } from '../harness/services.js';
import { pattern, read, rejectsWith, runConnectorContract, TEST_CHUNK_BYTES } from './connector-contract.js';

runConnectorContract('redis', { freshUrl: redisConnectorUrl, atomicRewrites: true });

const run = promisify(execFile);

/** A raw client on the server of a connector URL (for looking at and damaging its keys). */
async function rawClient(url: string, database = 0) {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  const client = createClient({
    socket: { host: u.hostname, port: Number(u.port || 6379) },
    database,
    ...(password === '' ? {} : { password }),
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

test('redis connector: URL forms; a bad one is TC_ERR_INVALID_ARGUMENT that never shows the password', () => {
  const u = parseRedisConnectorUrl('redis://user:p%40ss@10.0.0.5:6380/models/llama-3-8b/?db=3');
  assert.deepEqual(
    [u.host, u.port, u.tls, u.username, u.password, u.database, u.prefix, u.redacted],
    ['10.0.0.5', 6380, false, 'user', 'p@ss', 3, 'models/llama-3-8b', 'redis://user:***@10.0.0.5:6380/models/llama-3-8b/?db=3'],
  );
  const tls = parseRedisConnectorUrl('rediss://:secret@[::1]');
  assert.deepEqual([tls.host, tls.port, tls.tls, tls.password, tls.database, tls.prefix], ['::1', 6379, true, 'secret', 0, '']);
  for (const bad of [
    'redis://:hunter22@h/x?prefix=a',
    'redis://:hunter22@h/x?db=x',
    'redis://:hunter22@h:99999/x',
    'redis://:hunter22@/x',
    'http://:hunter22@h/x',
  ]) {
    assert.throws(
      () => parseRedisConnectorUrl(bad),
      (e: Error & { code?: string }) => e.code === 'TC_ERR_INVALID_ARGUMENT' && !e.message.includes('hunter22'),
      bad,
    );
  }
});

test('redis connector: the key layout is a manifest written last plus numbered chunks, all under the prefix', async (t) => {
  const url = await redisConnectorUrl(t);
  if (url === undefined) return;
  const prefix = new URL(url).pathname.slice(1);
  const c = await createConnector(url, { chunkBytes: TEST_CHUNK_BYTES });
  const raw = await rawClient(url);
  t.after(async () => {
    await c.close();
    raw.destroy();
  });
  // Keys of SGLang's layout under the same prefix are not objects of this connector and stay untouched.
  await raw.set(`${prefix}/keys/rank_0/model.embed_tokens.weight`, 'sglang');
  const first = await c.write('w/model.safetensors', pattern(2 * TEST_CHUNK_BYTES + 1, 1));
  const keys = async (): Promise<string[]> => (await raw.keys(`${prefix}/*`)).sort();
  assert.deepEqual(await keys(), [
    `${prefix}/.tc/c/${first.etag}/0`,
    `${prefix}/.tc/c/${first.etag}/1`,
    `${prefix}/.tc/c/${first.etag}/2`,
    `${prefix}/.tc/m/w/model.safetensors`,
    `${prefix}/keys/rank_0/model.embed_tokens.weight`,
  ]);
  assert.deepEqual(JSON.parse((await raw.get(`${prefix}/.tc/m/w/model.safetensors`))!), {
    v: 1,
    size: 2 * TEST_CHUNK_BYTES + 1,
    chunkBytes: TEST_CHUNK_BYTES,
    chunks: 3,
    version: first.etag,
  });
  // A completed write's chunks do not expire (they do while the write is in progress).
  assert.equal(await raw.pTTL(`${prefix}/.tc/c/${first.etag}/0`), -1);
  assert.deepEqual(
    (await c.list()).map((o) => o.key),
    ['w/model.safetensors'],
  );
  // A rewrite leaves only the new version's chunks; a delete leaves nothing of the object.
  const second = await c.write('w/model.safetensors', pattern(10, 2));
  assert.deepEqual(await keys(), [
    `${prefix}/.tc/c/${second.etag}/0`,
    `${prefix}/.tc/m/w/model.safetensors`,
    `${prefix}/keys/rank_0/model.embed_tokens.weight`,
  ]);
  await c.delete('w/model.safetensors');
  assert.deepEqual(await keys(), [`${prefix}/keys/rank_0/model.embed_tokens.weight`]);
  // A reader uses the chunk size recorded in the manifest, not its own option.
  const other = await createConnector(url, { chunkBytes: 1000 });
  t.after(() => other.close());
  const data = pattern(5000, 3);
  await other.write('x', data);
  assert.deepEqual(await read(c, 'x', 999, 1002), data.subarray(999, 2001));
});

test('redis connector: a lost chunk is TC_ERR_SHORT_READ; a damaged manifest TC_ERR_BACKEND', async (t) => {
  const url = await redisConnectorUrl(t);
  if (url === undefined) return;
  const prefix = new URL(url).pathname.slice(1);
  const c = await createConnector(url, { chunkBytes: TEST_CHUNK_BYTES });
  const raw = await rawClient(url);
  t.after(async () => {
    await c.close();
    raw.destroy();
  });
  const data = pattern(3 * TEST_CHUNK_BYTES, 4);
  const info = await c.write('obj', data);
  await raw.del(`${prefix}/.tc/c/${info.etag}/1`);
  await rejectsWith(read(c, 'obj', TEST_CHUNK_BYTES - 10, 20), 'TC_ERR_SHORT_READ', /chunk 1 .* missing/);
  assert.deepEqual(await read(c, 'obj', 2 * TEST_CHUNK_BYTES, TEST_CHUNK_BYTES), data.subarray(2 * TEST_CHUNK_BYTES));
  await raw.set(`${prefix}/.tc/m/obj`, 'not json');
  await rejectsWith(c.stat('obj'), 'TC_ERR_BACKEND', /not a tensorcast manifest/);
  await rejectsWith(c.list(), 'TC_ERR_BACKEND', /not a tensorcast manifest/);
});

test('redis connector: wrong or missing password is TC_ERR_AUTH without the password; ?db= selects the database', async (t) => {
  const server = await privateRedis(t, { password: 'right-pass-1' });
  if (server === undefined) return;
  const base = `127.0.0.1:${server.port}`;
  const fast = { retry: { attempts: 2, baseDelayMs: 10 } };
  for (const url of [`redis://:wrong-pass-2@${base}/m`, `redis://${base}/m`, `redis://someone:right-pass-1@${base}/m`]) {
    await assert.rejects(createConnector(url, fast), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'TC_ERR_AUTH', e.message);
      assert.ok(!e.message.includes('wrong-pass-2') && !e.message.includes('right-pass-1'), e.message);
      return true;
    });
  }
  const c = await createConnector(`redis://:right-pass-1@${base}/m?db=3`);
  t.after(() => c.close());
  assert.equal(c.displayUrl, `redis://:***@${base}/m?db=3`);
  await c.write('k', pattern(10));
  const raw = await rawClient(server.url, 3);
  t.after(() => raw.destroy());
  assert.deepEqual(await raw.keys('m/.tc/m/*'), ['m/.tc/m/k']);
  // An unreachable server is a retryable TC_ERR_BACKEND after the policy's tries.
  await server.stop();
  await assert.rejects(createConnector(`redis://:right-pass-1@${base}/m`, fast), (e: Error & { code?: string; retryable?: boolean }) => {
    assert.deepEqual([e.code, e.retryable], ['TC_ERR_BACKEND', true], e.message);
    return true;
  });
});

test('redis connector: a server restarted in the middle of reads: each read completes exactly or fails retryable', async (t) => {
  const server = await privateRedis(t, { persistent: true });
  if (server === undefined) return;
  const logged: string[] = [];
  const note = (_fields: object, message: string): void => void logged.push(message);
  const c = await createConnector(`${server.url}/restart`, {
    log: { debug: note, info: note, warn: note },
    chunkBytes: 256 * 1024,
    concurrency: 4,
    retry: { attempts: 12, baseDelayMs: 50, maxDelayMs: 500 },
  });
  t.after(() => c.close());
  const size = 16 * 1024 * 1024;
  const data = pattern(size, 5);
  const info = await c.write('big.bin', data);
  const outcomes: string[] = [];
  const readOnce = async (): Promise<void> => {
    const dest = Buffer.alloc(size);
    try {
      await c.readInto('big.bin', 0, dest, { etag: info.etag });
      assert.ok(dest.equals(data), 'a read that succeeded delivered other bytes');
      outcomes.push('ok');
    } catch (error) {
      const e = error as { code?: string; retryable?: boolean; message?: string };
      assert.ok(e.code === 'TC_ERR_BACKEND' && e.retryable === true, `not a retryable coded error: ${e.code} ${e.message}`);
      outcomes.push('retryable');
    }
  };
  // Two readers read the object over and over until the server is back, so reads are in flight when it stops.
  let restarted = false;
  const reader = async (): Promise<void> => {
    while (!restarted) await readOnce();
  };
  const readers = [reader(), reader()];
  await new Promise((resolve) => setTimeout(resolve, 100));
  await server.stop();
  await new Promise((resolve) => setTimeout(resolve, 200));
  await server.start();
  restarted = true;
  await Promise.all(readers);
  // Afterwards the same connector reads again (it reconnected by itself).
  await readOnce();
  const retries = logged.filter((m) => m.includes('retrying')).length;
  t.diagnostic(`reads across the restart: ${outcomes.join(', ')}; ${retries} retried calls`);
  assert.equal(outcomes.at(-1), 'ok', JSON.stringify(outcomes));
  assert.ok(logged.includes('connector connection lost') && logged.includes('connector connection restored'), logged.join('; '));
});

test('redis connector: rediss:// speaks TLS and checks the server certificate', async (t) => {
  const server = await privateRedis(t, { tls: true, password: 'tls-pass-1' });
  if (server === undefined) return;
  const url = `${server.tls!.url}/tls-model`;
  // This process does not trust the self-signed certificate: coded, without the password.
  await assert.rejects(createConnector(url, { retry: { attempts: 1 } }), (e: Error & { code?: string }) => {
    assert.ok(e.code === 'TC_ERR_BACKEND' && !e.message.includes('tls-pass-1'), `${e.code} ${e.message}`);
    return true;
  });
  const script = `import { createConnector } from ${JSON.stringify(new URL('../../src/connectors/create-connector.js', import.meta.url).href)};
    const c = await createConnector(process.argv[1]);
    await c.write('over-tls', new Uint8Array([1, 2, 3]));
    process.stdout.write(JSON.stringify((await c.list()).map((o) => [o.key, o.size])));
    await c.close();`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, url], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: server.tls!.caFile },
  });
  assert.deepEqual(JSON.parse(stdout), [['over-tls', 3]]);
  const plain = await createConnector(`${server.url}/tls-model`);
  t.after(() => plain.close());
  assert.deepEqual(await read(plain, 'over-tls', 0, 3), Buffer.from([1, 2, 3]));
});

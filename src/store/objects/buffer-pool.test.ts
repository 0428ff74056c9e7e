import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool, POOL_MIN_BYTES, poolCapacity } from './buffer-pool.js';
import { LATER, openStore, pattern, putBytes, readBytes } from './test-helpers.js';

const MiB = 1 << 20;

test('buffer pool: capacities are at most 1/8 above the size; small sizes are not pooled', () => {
  assert.equal(poolCapacity(MiB), MiB);
  assert.equal(poolCapacity(MiB + 1), MiB + MiB / 8);
  assert.equal(poolCapacity(100), 100);
  for (const size of [POOL_MIN_BYTES, 70_000, 3 * MiB - 1, 64 * MiB + 5]) {
    const cap = poolCapacity(size);
    assert.ok(cap >= size && cap <= size * 1.125, `${size} -> ${cap}`);
    assert.equal(poolCapacity(cap), cap, 'a capacity is its own class');
  }
});

test('buffer pool: take finds a given buffer of the class, the bound drops the largest first, evict frees', () => {
  const pool = new BufferPool(3 * MiB);
  assert.equal(pool.take(MiB), undefined);
  const a = Buffer.allocUnsafeSlow(MiB);
  assert.ok(pool.give(a));
  assert.equal(pool.take(MiB / 2), undefined, 'another class');
  assert.equal(pool.take(MiB), a);
  assert.equal(pool.idleBytes, 0);
  assert.ok(pool.give(Buffer.allocUnsafeSlow(2 * MiB)));
  assert.ok(pool.give(Buffer.allocUnsafeSlow(MiB)));
  assert.ok(pool.give(Buffer.allocUnsafeSlow(MiB)), 'the 2 MiB one made room');
  assert.equal(pool.idleBytes, 2 * MiB);
  assert.equal(pool.take(2 * MiB), undefined);
  assert.ok(!pool.give(Buffer.allocUnsafeSlow(4 * MiB)), 'larger than the bound');
  assert.ok(!pool.give(Buffer.allocUnsafeSlow(MiB + 1)), 'not a class capacity');
  assert.equal(pool.evict(1), MiB);
  assert.equal(pool.idleBytes, MiB);
  pool.clear();
  assert.equal(pool.idleBytes, 0);
  assert.deepEqual(pool.stats, { idleBytes: 0, hits: 1, misses: 3 });
});

test('object store: a freed object buffer is reused by the next put of its class, never showing old bytes', async () => {
  const store = await openStore({ memoryBytes: 8 * MiB, poolBytes: 4 * MiB });
  const first = pattern(MiB, 1);
  await putBytes(store, 'ns/a', first, {}, MiB);
  store.delete(['ns/a'], undefined);
  assert.equal(store.memoryBytesUsed, 0);
  assert.equal(store.pooledBytes.idleBytes, MiB);
  const second = pattern(MiB, 2);
  await putBytes(store, 'ns/b', second, {}, MiB);
  assert.equal(store.pooledBytes.hits, 1);
  assert.equal(store.pooledBytes.idleBytes, 0);
  assert.deepEqual(await readBytes(store, 'ns/b', undefined, MiB), second);
  // A re-put frees the old version into the pool; the next re-put takes it.
  await putBytes(store, 'ns/b', pattern(MiB, 3), {}, MiB);
  await putBytes(store, 'ns/b', pattern(MiB, 4), {}, MiB);
  assert.deepEqual(await readBytes(store, 'ns/b', undefined, MiB), pattern(MiB, 4));
  assert.ok(store.pooledBytes.hits >= 2);
  await store.close();
});

test('object store: idle pooled bytes count inside the budget and give way to a put that needs them', async () => {
  const store = await openStore({ memoryBytes: 4 * MiB, poolBytes: 4 * MiB });
  for (const k of ['a', 'b', 'c', 'd']) await putBytes(store, `ns/${k}`, pattern(MiB, 5), {}, MiB);
  store.delete(['ns/a', 'ns/b', 'ns/c', 'ns/d'], undefined);
  assert.equal(store.pooledBytes.idleBytes, 4 * MiB);
  // A 3 MiB object is another class: the idle 1 MiB buffers are dropped to make its room.
  await putBytes(store, 'ns/big', pattern(3 * MiB, 6), {}, MiB);
  assert.ok(store.memoryBytesUsed + store.pooledBytes.idleBytes <= 4 * MiB);
  await assert.rejects(store.beginPut({ key: 'ns/x', size: 2 * MiB, deadline: LATER }), { code: 'TC_ERR_BUDGET' });
  await store.close();
});

test('object store: an aborted put gives its buffer to no one (a decoder may still write into it)', async () => {
  const store = await openStore({ memoryBytes: 8 * MiB, poolBytes: 4 * MiB });
  const put = await store.beginPut({ key: 'ns/a', size: MiB, deadline: LATER });
  put.abort();
  assert.equal(store.pooledBytes.idleBytes, 0);
  assert.equal(store.memoryBytesUsed, 0);
  await store.close();
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c } from '../../bytes/crc32c.js';
import { LATER, openStore, pattern, putBytes, readBytes } from './test-helpers.js';

test('object store: a put is invisible until finished, then read back byte for byte with its CRC and a fresh version', async () => {
  const store = await openStore({ memoryBytes: 1 << 20 });
  const bytes = pattern(100, 1);
  const put = await store.beginPut({ key: 'ns/a', size: 100, deadline: LATER });
  assert.equal(put.tier, 'memory');
  put.target(0, 100)!.set(bytes);
  assert.throws(() => store.stat('ns/a', undefined), { code: 'TC_ERR_NOT_FOUND' });
  assert.equal(store.list('', {}).objects.length, 0);
  const { version } = await put.finish();
  const meta = store.stat('ns/a', undefined);
  assert.deepEqual(
    { size: meta.size, version: meta.version, crc: meta.crc, tier: meta.tier },
    { size: 100, version, crc: crc32c(bytes), tier: 'memory' },
  );
  assert.deepEqual(await readBytes(store, 'ns/a'), bytes);
  const v2 = await putBytes(store, 'ns/b', pattern(0, 0));
  assert.ok(v2 > version, 'versions increase');
  assert.deepEqual(await readBytes(store, 'ns/b'), Buffer.alloc(0), 'a 0-byte object');
  await store.close();
});

test('object store: a wrong whole-object CRC aborts the put and frees its room', async () => {
  const store = await openStore({ memoryBytes: 1000 });
  const put = await store.beginPut({ key: 'ns/a', size: 10, crc: 1234, deadline: LATER });
  await put.write(0, pattern(10, 2));
  await assert.rejects(put.finish(), { code: 'TC_ERR_CHECKSUM' });
  assert.throws(() => store.stat('ns/a', undefined), { code: 'TC_ERR_NOT_FOUND' });
  assert.equal(store.memoryBytesUsed, 0);
  const p2 = await store.beginPut({ key: 'ns/a', size: 10, deadline: LATER });
  await p2.write(0, pattern(10, 2));
  await assert.rejects(p2.finish(5), { code: 'TC_ERR_CHECKSUM' }, 'the crc given to finish is checked too');
  const p3 = await store.beginPut({ key: 'ns/a', size: 10, deadline: LATER });
  p3.abort();
  p3.abort();
  await assert.rejects(p3.finish(), { code: 'TC_ERR_NOT_FOUND' });
  assert.throws(() => p3.target(0, 1), { code: 'TC_ERR_NOT_FOUND' });
  assert.equal(store.namespaceInfo('ns', undefined).pendingPuts, 0);
  assert.equal(store.memoryBytesUsed, 0);
  await store.close();
});

test('object store: bad requests get TC_ERR_INVALID_ARGUMENT', async () => {
  const store = await openStore({ memoryBytes: 1000 });
  for (const req of [
    { key: 'nokey', size: 1 },
    { key: 'ns/a', size: -1 },
    { key: 'ns/a', size: 1.5 },
    { key: 'ns/a', size: 1, ttlMs: 0 },
    { key: 'ns/a', size: 1, ifVersion: 0 },
    { key: 'ns/a', size: 1, txn: '' },
    { key: 'ns/../a', size: 1 },
  ])
    await assert.rejects(store.beginPut({ deadline: LATER, ...req }), { code: 'TC_ERR_INVALID_ARGUMENT' }, JSON.stringify(req));
  const put = await store.beginPut({ key: 'ns/a', size: 4, deadline: LATER });
  assert.throws(() => put.target(2, 3), { code: 'TC_ERR_INVALID_ARGUMENT' });
  await assert.rejects(put.write(5, new Uint8Array(1)), { code: 'TC_ERR_INVALID_ARGUMENT' });
  await assert.rejects(store.beginPut({ key: 'ns/s', size: 1, placement: 'shm', deadline: LATER }), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => store.list('', { limit: 0 }), { code: 'TC_ERR_INVALID_ARGUMENT' });
  await store.close();
});

test('object store: a same-key re-put supersedes; a reader of the old version fails NOT_FOUND on its next chunk; old bytes freed after its chunk', async () => {
  const store = await openStore({ memoryBytes: 1000 });
  const v1 = await putBytes(store, 'ns/k', pattern(100, 1));
  const lease = store.openRead('ns/k', undefined, LATER);
  const first = await lease.chunk(0, 50);
  assert.deepEqual(Buffer.from(first), pattern(100, 1).subarray(0, 50));
  const v2 = await putBytes(store, 'ns/k', pattern(100, 2));
  assert.ok(v2 > v1);
  assert.equal(store.stat('ns/k', undefined).version, v2, 'new readers see the new version at once');
  let info = store.namespaceInfo('ns', undefined);
  assert.equal(info.pendingFrees, 1, 'the old bytes wait for the chunk being copied');
  assert.equal(info.residentBytes, 200);
  assert.deepEqual(Buffer.from(first), pattern(100, 1).subarray(0, 50), 'the chunk being copied is still the old bytes');
  lease.done();
  info = store.namespaceInfo('ns', undefined);
  assert.equal(info.pendingFrees, 0);
  assert.equal(info.residentBytes, 100);
  await assert.rejects(lease.chunk(50, 50), (e: Error & { code?: string }) => e.code === 'TC_ERR_NOT_FOUND' && /replaced/.test(e.message));
  lease.release();
  assert.deepEqual(await readBytes(store, 'ns/k'), pattern(100, 2));
  await store.close();
});

test('object store: delete is logical at once, never waits for a read, frees when no chunk is copied; existence checks make no lease', async () => {
  const store = await openStore({ memoryBytes: 1000 });
  await putBytes(store, 'ns/k', pattern(64, 3));
  const lease = store.openRead('ns/k', undefined, LATER);
  await lease.chunk(0, 10);
  assert.deepEqual(store.delete(['ns/k', 'ns/missing', 'bad'], undefined), [
    { key: 'ns/k', ok: true, existed: true },
    { key: 'ns/missing', ok: true, existed: false },
    { key: 'bad', ok: false, code: 'TC_ERR_INVALID_ARGUMENT', message: "object key 'bad' has no name: write <namespace>/<name>" },
  ]);
  assert.throws(() => store.openRead('ns/k', undefined, LATER), { code: 'TC_ERR_NOT_FOUND' });
  assert.equal(store.namespaceInfo('ns', undefined).pendingFrees, 1);
  assert.equal(store.memoryBytesUsed, 64);
  lease.done();
  assert.equal(store.memoryBytesUsed, 0, 'freed once the chunk was sent');
  await assert.rejects(lease.chunk(10, 10), { code: 'TC_ERR_NOT_FOUND' });
  lease.release();
  await store.close();
});

test('object store: a read that never says done is bounded by its deadline (the sweep frees the bytes)', async () => {
  let now = 1_000_000;
  const store = await openStore({ memoryBytes: 1000, now: () => now });
  await putBytes(store, 'ns/k', pattern(64, 3));
  const lease = store.openRead('ns/k', undefined, now + 5000);
  await lease.chunk(0, 10);
  store.delete(['ns/k'], undefined);
  store.sweep();
  assert.equal(store.memoryBytesUsed, 64, 'before its deadline the chunk holds the bytes');
  now += 5000;
  store.sweep();
  assert.equal(store.memoryBytesUsed, 0);
  await assert.rejects(lease.chunk(10, 10), { code: 'TC_ERR_TIMEOUT' });
  await store.close();
});

test('object store: list is ordered by UTF-8 bytes, pages with after/next, filters by prefix', async () => {
  const store = await openStore({ memoryBytes: 1000 });
  const keys = ['ns/b', 'ns/a/2', 'ns/a/1', 'ns/\u{1F600}', 'ns/\uFF01', 'other/x'];
  for (const k of keys) await putBytes(store, k, pattern(1, 0));
  const all = store.list('ns/', {}).objects.map((o) => o.key);
  assert.deepEqual(all, ['ns/a/1', 'ns/a/2', 'ns/b', 'ns/\uFF01', 'ns/\u{1F600}']);
  const p1 = store.list('ns/', { limit: 2 });
  assert.deepEqual(
    p1.objects.map((o) => o.key),
    ['ns/a/1', 'ns/a/2'],
  );
  assert.equal(p1.next, 'ns/a/2');
  const p2 = store.list('ns/', { limit: 10, after: p1.next });
  assert.deepEqual(
    p2.objects.map((o) => o.key),
    ['ns/b', 'ns/\uFF01', 'ns/\u{1F600}'],
  );
  assert.equal(p2.next, null);
  assert.equal(store.list('', {}).objects.length, 6);
  await store.close();
});

test('object store: a TTL expires an object at the sweep, like a delete', async () => {
  let now = 1_000_000;
  const store = await openStore({ memoryBytes: 1000, now: () => now });
  await putBytes(store, 'ns/t', pattern(8, 1), { ttlMs: 1000 });
  await putBytes(store, 'ns/keep', pattern(8, 1));
  assert.equal(store.stat('ns/t', undefined).expiresAt, now + 1000);
  now += 999;
  store.sweep();
  assert.equal(store.stat('ns/t', undefined).size, 8);
  now += 1;
  store.sweep();
  assert.throws(() => store.stat('ns/t', undefined), { code: 'TC_ERR_NOT_FOUND' });
  assert.equal(store.stat('ns/keep', undefined).expiresAt, null);
  assert.equal(store.memoryBytesUsed, 8);
  await store.close();
});

test('object store: a put past its deadline is aborted by the sweep; its finish fails TC_ERR_TIMEOUT', async () => {
  let now = 1_000_000;
  const store = await openStore({ memoryBytes: 1000, now: () => now });
  const put = await store.beginPut({ key: 'ns/slow', size: 10, deadline: now + 100 });
  now += 100;
  store.sweep();
  await assert.rejects(put.finish(), { code: 'TC_ERR_TIMEOUT' });
  assert.equal(store.memoryBytesUsed, 0);
  await store.close();
});

test('object store: close fails waiters and puts with TC_ERR_SHUTTING_DOWN and frees everything', async () => {
  const store = await openStore({ memoryBytes: 10 });
  await putBytes(store, 'ns/a', pattern(10, 1));
  const waiting = store.beginPut({ key: 'ns/b', size: 5, waitForRoom: true, deadline: LATER });
  const put = await store.beginPut({ key: 'ns/c', size: 0, deadline: LATER });
  await store.close();
  await assert.rejects(waiting, { code: 'TC_ERR_SHUTTING_DOWN' });
  await assert.rejects(put.finish(), { code: 'TC_ERR_SHUTTING_DOWN' });
  assert.equal(store.memoryBytesUsed, 0);
  await assert.rejects(store.beginPut({ key: 'ns/d', size: 1, deadline: LATER }), { code: 'TC_ERR_SHUTTING_DOWN' });
});

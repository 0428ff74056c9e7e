import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LATER, openStore, pattern, putBytes, readBytes } from './test-helpers.js';

test('object txns: parked puts are invisible until the commit makes all of them visible at once', async () => {
  const store = await openStore({ memoryBytes: 1000 });
  const va = await putBytes(store, 's/a', pattern(10, 1), { txn: 't1' });
  const vb = await putBytes(store, 's/b', pattern(20, 2), { txn: 't1' });
  assert.throws(() => store.stat('s/a', undefined), { code: 'TC_ERR_NOT_FOUND' });
  const info = store.namespaceInfo('s', undefined);
  assert.equal(info.openTxns, 1);
  assert.equal(info.pendingPuts, 2);
  assert.equal(info.pendingBytes, 30);
  assert.deepEqual(store.commitTxn('t1', [{ key: 's/m', ifVersion: null }], undefined), { 's/a': va, 's/b': vb });
  assert.equal(store.stat('s/a', undefined).version, va, 'finish told the version the commit gives');
  assert.deepEqual(await readBytes(store, 's/b'), pattern(20, 2));
  assert.equal(store.namespaceInfo('s', undefined).openTxns, 0);
  assert.throws(() => store.commitTxn('t1', [], undefined), { code: 'TC_ERR_NOT_FOUND' }, 'a committed txn is gone');
  await store.close();
});

test('object txns: a failed condition makes nothing visible, aborts the puts and frees their bytes', async () => {
  const store = await openStore({ memoryBytes: 1000 });
  const vm = await putBytes(store, 's/manifest', pattern(5, 0));
  await putBytes(store, 's/a', pattern(10, 1), { txn: 't' });
  await putBytes(store, 's/manifest', pattern(6, 1), { txn: 't' });
  assert.throws(() => store.commitTxn('t', [{ key: 's/manifest', ifVersion: vm + 1000 }], undefined), { code: 'TC_ERR_CONFLICT' });
  assert.throws(() => store.stat('s/a', undefined), { code: 'TC_ERR_NOT_FOUND' });
  assert.equal(store.stat('s/manifest', undefined).version, vm);
  assert.equal(store.memoryBytesUsed, 5);
  assert.throws(() => store.commitTxn('t', [], undefined), { code: 'TC_ERR_NOT_FOUND' });
  // A put's own ifVersion is a condition too.
  await putBytes(store, 's/x', pattern(3, 1), { txn: 'u', ifVersion: null });
  await putBytes(store, 's/x', pattern(3, 2));
  assert.throws(() => store.commitTxn('u', [], undefined), { code: 'TC_ERR_CONFLICT' });
  assert.deepEqual(await readBytes(store, 's/x'), pattern(3, 2));
  // The condition holds: the commit goes through.
  await putBytes(store, 's/manifest', pattern(7, 3), { txn: 'w' });
  assert.ok(store.commitTxn('w', [{ key: 's/manifest', ifVersion: vm }], undefined)['s/manifest']! > vm);
  await store.close();
});

test('object txns: a commit with a put still landing is refused and changes nothing; abortTxn drops every put', async () => {
  const store = await openStore({ memoryBytes: 1000 });
  await putBytes(store, 's/a', pattern(10, 1), { txn: 't' });
  const landing = await store.beginPut({ key: 's/b', size: 4, txn: 't', deadline: LATER });
  assert.throws(() => store.commitTxn('t', [], undefined), { code: 'TC_ERR_INVALID_ARGUMENT' });
  store.abortTxn('t');
  store.abortTxn('t');
  await assert.rejects(landing.finish(), { code: 'TC_ERR_NOT_FOUND' });
  assert.equal(store.memoryBytesUsed, 0);
  assert.equal(store.namespaceInfo('s', undefined).openTxns, 0);
  await store.close();
});

test('object txns: a txn unused for txnTtlMs is aborted by the sweep and its bytes freed', async () => {
  let now = 1_000_000;
  const store = await openStore({ memoryBytes: 1000, txnTtlMs: 500, now: () => now });
  await putBytes(store, 's/a', pattern(10, 1), { txn: 't' });
  now += 499;
  store.sweep();
  assert.equal(store.memoryBytesUsed, 10);
  now += 1;
  store.sweep();
  assert.equal(store.memoryBytesUsed, 0);
  assert.throws(() => store.commitTxn('t', [], undefined), { code: 'TC_ERR_NOT_FOUND' });
  await store.close();
});

test('object txns: a txn with a put still landing is not idle; its TTL counts from when that put landed', async () => {
  let now = 1_000_000;
  const store = await openStore({ memoryBytes: 1000, txnTtlMs: 500, now: () => now });
  await putBytes(store, 's/a', pattern(10, 1), { txn: 't' });
  const landing = await store.beginPut({ key: 's/b', size: 4, txn: 't', deadline: LATER });
  now += 10_000; // a large put takes longer than the TTL
  store.sweep();
  assert.equal(store.memoryBytesUsed, 14, 'the txn was kept');
  landing.target(0, 4)!.set(pattern(4, 2));
  await landing.finish();
  now += 499;
  store.sweep();
  assert.equal(store.memoryBytesUsed, 14);
  now += 1;
  store.sweep();
  assert.equal(store.memoryBytesUsed, 0, 'abandoned after its last put landed');
  await store.close();
});

test('object puts: ifVersion without txn is checked at begin and at commit', async () => {
  const store = await openStore({ memoryBytes: 1000 });
  const v1 = await putBytes(store, 's/k', pattern(4, 1), { ifVersion: null });
  await assert.rejects(putBytes(store, 's/k', pattern(4, 2), { ifVersion: null }), { code: 'TC_ERR_CONFLICT' });
  const racing = await store.beginPut({ key: 's/k', size: 4, ifVersion: v1, deadline: LATER });
  const v2 = await putBytes(store, 's/k', pattern(4, 3), { ifVersion: v1 });
  await racing.write(0, pattern(4, 4));
  await assert.rejects(racing.finish(), { code: 'TC_ERR_CONFLICT' });
  assert.equal(store.stat('s/k', undefined).version, v2);
  assert.equal(store.memoryBytesUsed, 4);
  await store.close();
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LATER, openStore, pattern, putBytes, readBytes } from './test-helpers.js';

test('object namespaces: a token is required on every operation; changing it needs the old one', async () => {
  const store = await openStore({ memoryBytes: 1000 });
  const info = store.configureNamespace('sec', { token: 'secret' }, undefined);
  assert.equal(info.hasToken, true);
  await putBytes(store, 'open/x', pattern(3, 0));
  for (const token of [undefined, 'wrong']) {
    await assert.rejects(putBytes(store, 'sec/a', pattern(3, 1), { storeToken: token }), { code: 'TC_ERR_AUTH' });
  }
  await putBytes(store, 'sec/a', pattern(3, 1), { storeToken: 'secret', txn: 't' });
  assert.throws(() => store.commitTxn('t', [], 'wrong'), { code: 'TC_ERR_AUTH' });
  store.commitTxn('t', [], 'secret');
  assert.throws(() => store.stat('sec/a', 'wrong'), { code: 'TC_ERR_AUTH' });
  assert.throws(() => store.openRead('sec/a', undefined, LATER), { code: 'TC_ERR_AUTH' });
  assert.throws(() => store.namespaceInfo('sec', undefined), { code: 'TC_ERR_AUTH' });
  assert.deepEqual(await readBytes(store, 'sec/a', 'secret'), pattern(3, 1));
  assert.deepEqual(
    store.list('', {}).objects.map((o) => o.key),
    ['open/x'],
    'objects of a token namespace are listed only with its token',
  );
  assert.deepEqual(
    store.list('', { storeToken: 'secret' }).objects.map((o) => o.key),
    ['open/x', 'sec/a'],
  );
  assert.deepEqual(store.delete(['sec/a'], 'nope')[0], {
    key: 'sec/a',
    ok: false,
    code: 'TC_ERR_AUTH',
    message: "wrong store token for object namespace 'sec'",
  });
  assert.throws(() => store.configureNamespace('sec', { token: 'mine' }, undefined), { code: 'TC_ERR_AUTH' });
  store.configureNamespace('sec', { token: 'new' }, 'secret');
  assert.throws(() => store.stat('sec/a', 'secret'), { code: 'TC_ERR_AUTH' });
  assert.equal(store.stat('sec/a', 'new').size, 3);
  store.configureNamespace('sec', { token: null }, 'new');
  assert.equal(store.stat('sec/a', undefined).size, 3, 'token removed');
  assert.throws(() => store.configureNamespace('sec', { maxBytes: -1 }, undefined), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => store.configureNamespace('sec', { token: '' }, undefined), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => store.configureNamespace('a/b', {}, undefined), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => store.namespaceInfo('none', undefined), { code: 'TC_ERR_NOT_FOUND' });
  assert.deepEqual(
    store.namespaces().map((n) => n.namespace),
    ['open', 'sec'],
  );
  await store.close();
});

test('object namespaces: maxBytes gives TC_ERR_BACKPRESSURE; waitForRoom waits FIFO until room or its deadline', async () => {
  const store = await openStore({ memoryBytes: 10_000 });
  store.configureNamespace('q', { maxBytes: 100 }, undefined);
  await putBytes(store, 'q/a', pattern(60, 1));
  await assert.rejects(putBytes(store, 'q/b', pattern(50, 2)), { code: 'TC_ERR_BACKPRESSURE' });
  await assert.rejects(
    putBytes(store, 'q/huge', pattern(101, 2), { waitForRoom: true }),
    { code: 'TC_ERR_BACKPRESSURE' },
    'never fits: no wait',
  );
  await assert.rejects(
    putBytes(store, 'q/late', pattern(50, 2), { waitForRoom: true, deadline: Date.now() + 20 }),
    (e: Error & { code?: string }) => e.code === 'TC_ERR_BACKPRESSURE' && /deadline/.test(e.message),
  );
  const order: string[] = [];
  const w1 = store.beginPut({ key: 'q/w1', size: 70, waitForRoom: true, deadline: LATER }).then((p) => (order.push('w1'), p));
  const w2 = store.beginPut({ key: 'q/w2', size: 20, waitForRoom: true, deadline: LATER }).then((p) => (order.push('w2'), p));
  // w2 would fit now (60 + 20 <= 100) but waits behind w1 (FIFO); so does a put that does not wait.
  await assert.rejects(putBytes(store, 'q/c', pattern(10, 2)), { code: 'TC_ERR_BACKPRESSURE' });
  assert.deepEqual(order, []);
  store.delete(['q/a'], undefined);
  const [p1, p2] = await Promise.all([w1, w2]);
  assert.deepEqual(order, ['w1', 'w2']);
  const info = store.namespaceInfo('q', undefined);
  assert.equal(info.residentBytes, 90);
  assert.equal(info.pendingPuts, 2);
  p1.abort();
  p2.abort();
  store.configureNamespace('q', { maxBytes: null }, undefined);
  await putBytes(store, 'q/big', pattern(500, 2));
  await store.close();
});

test('object memory budget: TC_ERR_BUDGET without spill; waitForRoom waits; too large fails at once; over 4 GiB-1 needs spill', async () => {
  const store = await openStore({ memoryBytes: 100 });
  await putBytes(store, 'm/a', pattern(80, 1));
  await assert.rejects(putBytes(store, 'm/b', pattern(30, 1)), { code: 'TC_ERR_BUDGET' });
  await assert.rejects(
    putBytes(store, 'm/c', pattern(101, 1), { waitForRoom: true }),
    (e: Error & { code?: string }) => e.code === 'TC_ERR_BUDGET' && /larger than the whole/.test(e.message),
  );
  await assert.rejects(store.beginPut({ key: 'm/d', size: 2 ** 32, deadline: LATER }), { code: 'TC_ERR_INVALID_ARGUMENT' });
  const waiting = store.beginPut({ key: 'm/b', size: 30, waitForRoom: true, deadline: LATER });
  store.delete(['m/a'], undefined);
  const put = await waiting;
  assert.equal(put.tier, 'memory');
  put.abort();
  await store.close();
});

test('object stats: counters per namespace follow puts, commits, reads and deletes', async () => {
  const store = await openStore({ memoryBytes: 1000 });
  await putBytes(store, 'st/a', pattern(10, 1));
  const pending = await store.beginPut({ key: 'st/b', size: 7, deadline: LATER });
  await putBytes(store, 'st/c', pattern(5, 1), { txn: 'tx' });
  const lease = store.openRead('st/a', undefined, LATER);
  await lease.chunk(0, 1);
  store.delete(['st/a'], undefined);
  const { namespace, ...counts } = store.namespaceInfo('st', undefined);
  assert.equal(namespace, 'st');
  assert.deepEqual(counts, {
    hasToken: false,
    maxBytes: null,
    objects: 0,
    residentBytes: 22,
    memoryBytes: 22,
    shmBytes: 0,
    diskBytes: 0,
    pendingPuts: 2,
    pendingBytes: 12,
    pendingFrees: 1,
    lost: 0,
    openTxns: 1,
  });
  lease.release();
  pending.abort();
  store.abortTxn('tx');
  assert.equal(store.namespaceInfo('st', undefined).residentBytes, 0);
  await store.close();
});

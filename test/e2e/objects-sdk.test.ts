// The SDK's objects client against a real daemon (a separate process): put/get byte-identical over TCP and
// shared memory, get-into exact-size rules, batch statuses, transaction commits that are all-or-nothing as
// seen through the SDK, and namespaces with a store token and a resident-bytes limit.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { isTensorcastError } from '../../src/core/errors.js';
import { connect, type TensorcastClient } from '../../src/client/tensorcast-client.js';
import { startDaemon } from '../harness/daemon.js';

async function client(t: TestContext): Promise<TensorcastClient> {
  const d = await startDaemon(t);
  const c = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => c.close());
  return c;
}

const code = (c: string) => (e: unknown) => isTensorcastError(e) && e.code === c;

test('objects sdk: put/get are byte-identical over tcp and shm; auto picks shm for large objects on this host', async (t) => {
  const objects = (await client(t)).objects();
  const big = randomBytes((9 << 20) + 7);
  const tcp = await objects.put('sdk/tcp', big, { transport: 'tcp' });
  assert.equal(tcp.bytes, big.length);
  assert.equal((await objects.stat('sdk/tcp'))!.tier, 'memory');
  assert.ok(Buffer.from((await objects.get('sdk/tcp', { transport: 'tcp' })).data).equals(big));

  const shm = await objects.put('sdk/shm', big, { transport: 'shm' });
  assert.ok(shm.version > tcp.version);
  const meta = (await objects.stat('sdk/shm'))!;
  assert.equal(meta.tier, 'shm');
  assert.equal(meta.size, big.length);
  const into = new Uint8Array(big.length);
  const got = await objects.get('sdk/shm', { into, transport: 'shm' });
  assert.equal(got.data, into);
  assert.equal(got.version, shm.version);
  assert.ok(Buffer.from(into).equals(big));
  // Every transport reads every tier: tcp from a segment, shm falls back to tcp for a memory object.
  assert.ok(Buffer.from((await objects.get('sdk/shm', { transport: 'tcp' })).data).equals(big));
  assert.ok(Buffer.from((await objects.get('sdk/tcp', { transport: 'shm' })).data).equals(big));

  await objects.put('sdk/auto-big', big);
  assert.equal((await objects.stat('sdk/auto-big'))!.tier, 'shm');
  await objects.put('sdk/auto-small', Buffer.from('small'));
  assert.equal((await objects.stat('sdk/auto-small'))!.tier, 'memory');
  assert.equal(Buffer.from((await objects.get('sdk/auto-small')).data).toString(), 'small');
  const empty = await objects.put('sdk/empty', new Uint8Array(0), { transport: 'shm' });
  assert.equal((await objects.get('sdk/empty')).bytes, 0);
  assert.equal((await objects.get('sdk/empty')).version, empty.version);
});

test('objects sdk: get-into needs exactly the object size (larger: SHORT_READ, smaller: DESTINATION_SIZE)', async (t) => {
  const objects = (await client(t)).objects();
  const data = randomBytes((2 << 20) + 1);
  await objects.put('sdk/mem', data, { transport: 'tcp' });
  await objects.put('sdk/seg', data, { transport: 'shm' });
  for (const key of ['sdk/mem', 'sdk/seg'])
    for (const transport of ['tcp', 'shm'] as const) {
      const larger = new Uint8Array(data.length + 1);
      await assert.rejects(objects.get(key, { into: larger, transport }), code('TC_ERR_SHORT_READ'), `${key} ${transport} larger`);
      assert.ok(
        larger.every((b) => b === 0),
        'nothing landed',
      );
      await assert.rejects(
        objects.get(key, { into: new Uint8Array(data.length - 1), transport }),
        code('TC_ERR_DESTINATION_SIZE'),
        `${key} ${transport} smaller`,
      );
      const exact = new Uint8Array(data.length);
      await objects.get(key, { into: exact, transport });
      assert.ok(Buffer.from(exact).equals(data));
    }
  await assert.rejects(objects.get('sdk/none'), code('TC_ERR_NOT_FOUND'));
});

test('objects sdk: batches report one status per item; namespaces with a token and maxBytes', async (t) => {
  const c = await client(t);
  const owner = c.objects({ storeToken: 'tok-1' });
  const info = await owner.ensureNamespace('secure', { token: 'tok-1', maxBytes: 1 << 20 });
  assert.equal(info.hasToken, true);
  assert.equal(info.maxBytes, 1 << 20);
  const anonymous = c.objects();
  await assert.rejects(anonymous.put('secure/a', Buffer.from('x'), { transport: 'tcp' }), code('TC_ERR_AUTH'));
  await assert.rejects(c.objects({ storeToken: 'wrong' }).get('secure/a'), code('TC_ERR_AUTH'));

  const items = [
    { key: 'open/a', data: randomBytes(1000) },
    { key: 'secure/b', data: randomBytes(1000) },
    { key: 'open/c', data: randomBytes(2000) },
  ];
  const puts = await anonymous.putMany(items, { transport: 'tcp' });
  assert.deepEqual(
    puts.map((r) => (r.ok ? 'ok' : r.error.code)),
    ['ok', 'TC_ERR_AUTH', 'ok'],
  );
  const gets = await anonymous.getMany([{ key: 'open/a' }, { key: 'open/missing' }, { key: 'open/c', into: new Uint8Array(2000) }]);
  assert.deepEqual(
    gets.map((r) => (r.ok ? 'ok' : r.error.code)),
    ['ok', 'TC_ERR_NOT_FOUND', 'ok'],
  );
  assert.ok(gets[2]!.ok && Buffer.from(gets[2]!.value.data).equals(items[2]!.data));

  // The limit: 700 KiB fits, another 700 KiB does not (retryable backpressure), over both transports.
  await owner.put('secure/one', randomBytes(700 << 10), { transport: 'tcp' });
  await assert.rejects(owner.put('secure/two', randomBytes(700 << 10), { transport: 'tcp' }), (e: unknown) => {
    return isTensorcastError(e) && e.code === 'TC_ERR_BACKPRESSURE' && e.retryable;
  });
  const stats = await owner.namespaceInfo('secure');
  assert.equal(stats.objects, 1);
  assert.equal(stats.residentBytes, 700 << 10);
  // Objects of a namespace with a token are listed only with it.
  assert.deepEqual(
    (await anonymous.list('secure/')).map((m) => m.key),
    [],
  );
  assert.deepEqual(
    (await owner.list('secure/')).map((m) => m.key),
    ['secure/one'],
  );
  const del = await anonymous.delete(['open/a', 'open/never', 'secure/one']);
  assert.deepEqual(
    del.map((r) => (r.ok ? r.value.existed : r.error.code)),
    [true, false, 'TC_ERR_AUTH'],
  );
});

test('objects sdk: a transaction commits all its puts at once, or none when a condition fails', async (t) => {
  const objects = (await client(t)).objects();
  const m0 = await objects.put('txn/manifest', Buffer.from('g0'));
  const txn = objects.newTxn();
  const puts = await objects.putMany(
    [
      { key: 'txn/x', data: randomBytes(3 << 20) },
      { key: 'txn/manifest', data: Buffer.from('g1') },
    ],
    { txn },
  );
  assert.ok(puts.every((r) => r.ok));
  // Invisible before the commit.
  assert.equal(await objects.stat('txn/x'), undefined);
  assert.equal(Buffer.from((await objects.get('txn/manifest')).data).toString(), 'g0');
  const versions = await objects.commit(txn, [{ key: 'txn/manifest', ifVersion: m0.version }]);
  assert.deepEqual(Object.keys(versions).sort(), ['txn/manifest', 'txn/x']);
  assert.equal((await objects.stat('txn/x'))!.version, versions['txn/x']);
  assert.equal(Buffer.from((await objects.get('txn/manifest')).data).toString(), 'g1');

  // A second producer still conditioned on g0's version loses: nothing of its txn becomes visible.
  const late = objects.newTxn();
  await objects.put('txn/y', Buffer.from('late'), { txn: late });
  await objects.put('txn/manifest', Buffer.from('g1-late'), { txn: late });
  await assert.rejects(objects.commit(late, [{ key: 'txn/manifest', ifVersion: m0.version }]), code('TC_ERR_CONFLICT'));
  assert.equal(await objects.stat('txn/y'), undefined);
  assert.equal(Buffer.from((await objects.get('txn/manifest')).data).toString(), 'g1');

  // An aborted txn leaves nothing either.
  const dropped = objects.newTxn();
  await objects.put('txn/z', Buffer.from('z'), { txn: dropped });
  await objects.abort(dropped);
  await assert.rejects(objects.commit(dropped), code('TC_ERR_NOT_FOUND'));
  assert.equal(await objects.stat('txn/z'), undefined);
});

test('objects sdk: an aborted put (waiting for room) is never reported done and leaves nothing behind', async (t) => {
  const objects = (await client(t)).objects();
  await objects.ensureNamespace('small', { maxBytes: 1 << 20 });
  await objects.put('small/blocker', randomBytes(700 << 10), { transport: 'tcp' });
  // This put waits for room (no credit yet) until the caller gives up.
  const abort = new AbortController();
  const waiting = objects.put('small/waiting', randomBytes(700 << 10), { transport: 'tcp', waitForRoom: true, signal: abort.signal });
  const reason = new Error('caller gave up');
  abort.abort(reason);
  await assert.rejects(waiting, (e) => e === reason);
  await objects.delete(['small/blocker']);
  // The daemon drops the put with its connection: the namespace empties and the key never appears.
  for (;;) {
    const info = await objects.namespaceInfo('small');
    if (info.residentBytes === 0 && info.pendingPuts === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(await objects.stat('small/waiting'), undefined);
  // The pool goes on working after the aborted connection was closed.
  assert.equal((await objects.put('small/after', Buffer.from('ok'), { transport: 'tcp' })).bytes, 2);
});

test('sdk: close() is idempotent (a second call, e.g. from a cleanup hook, resolves)', async (t) => {
  const c = await client(t);
  await c.objects().put('sdk/close', Buffer.from('x'));
  await Promise.all([c.close(), c.close()]);
  await c.close();
});

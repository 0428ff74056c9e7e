// Objects on a real daemon: PUT and GET frames over TCP (raw frames), the control routes (stat, list,
// delete, commit, namespaces), a namespace's store token on both planes, and the same-host shm hand-off.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { crc32c } from '../../src/protocol/frames.js';
import { STORE_TOKEN_HEADER, type DeleteObjectsResponse, type ObjectList, type ObjectMeta } from '../../src/protocol/http/objects.js';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';
import { controlRequest, errorCode } from '../helpers/control-http.js';
import { ObjectWire } from '../helpers/object-wire.js';
import { tempDir } from '../helpers/tmp.js';

async function wire(t: { after: (fn: () => void) => void }, d: TestDaemon): Promise<ObjectWire> {
  const w = await ObjectWire.open(d.dataAddress, d.token);
  t.after(() => w.close());
  return w;
}

test('objects e2e: put and get over tcp are byte-identical; stat, list and delete over http', async (t) => {
  const d = await startDaemon(t);
  const w = await wire(t, d);
  const big = randomBytes((9 << 20) + 7);
  const put = await w.put({ key: 'e2e/big', crc: crc32c(big) }, big, { frameBytes: 4 << 20 });
  assert.ok(put.ok, JSON.stringify(put));
  const empty = await w.put({ key: 'e2e/empty' }, new Uint8Array(0));
  assert.ok(empty.ok);
  assert.ok(empty.version > put.version, 'versions increase');
  const got = await w.get({ key: 'e2e/big', expectBytes: big.length });
  assert.ok(got.ok && got.data!.equals(big) && got.version === put.version);

  const stat = await controlRequest(d, 'GET', '/v1/objects/stat?key=e2e%2Fbig');
  assert.equal(stat.status, 200);
  const meta = stat.json as ObjectMeta;
  assert.deepEqual([meta.key, meta.size, meta.version, meta.crc, meta.tier], ['e2e/big', big.length, put.version, crc32c(big), 'memory']);
  const list = (await controlRequest(d, 'GET', '/v1/objects?prefix=e2e%2F')).json as ObjectList;
  assert.deepEqual(
    list.objects.map((o) => o.key),
    ['e2e/big', 'e2e/empty'],
  );
  const page = (await controlRequest(d, 'GET', '/v1/objects?prefix=e2e%2F&limit=1')).json as ObjectList;
  assert.equal(page.objects.length, 1);
  assert.equal(page.next, 'e2e/big');

  const del = (await controlRequest(d, 'POST', '/v1/objects/delete', { keys: ['e2e/big', 'e2e/never'] })).json as DeleteObjectsResponse;
  assert.deepEqual(del.results, [
    { key: 'e2e/big', ok: true, existed: true },
    { key: 'e2e/never', ok: true, existed: false },
  ]);
  const gone = await w.get({ key: 'e2e/big' });
  assert.ok(!gone.ok && gone.error.code === 'TC_ERR_NOT_FOUND');
  const stat404 = await controlRequest(d, 'GET', '/v1/objects/stat?key=e2e%2Fbig');
  assert.equal(stat404.status, 404);
  assert.equal(errorCode(stat404.json), 'TC_ERR_NOT_FOUND');
  const bad = await controlRequest(d, 'GET', '/v1/objects/stat?key=nokey');
  assert.equal(errorCode(bad.json), 'TC_ERR_INVALID_ARGUMENT');
  // The daemon's bearer token is still needed.
  const noBearer = await controlRequest({ ...d, token: 'x'.repeat(20) }, 'GET', '/v1/objects');
  assert.equal(noBearer.status, 401);
});

test('objects e2e: a namespace token is required on both planes (TC_ERR_AUTH), and only its holder lists its objects', async (t) => {
  const d = await startDaemon(t);
  const w = await wire(t, d);
  const made = await controlRequest(d, 'PUT', '/v1/namespaces/sec', { token: 'sesame-0123456789', maxBytes: 1 << 20 });
  assert.equal(made.status, 200, JSON.stringify(made.json));
  assert.equal((made.json as { hasToken: boolean }).hasToken, true);
  const data = randomBytes(1000);
  for (const storeToken of [undefined, 'wrong-token']) {
    const r = await w.put({ key: 'sec/a', ...(storeToken === undefined ? {} : { storeToken }) }, data);
    assert.ok(!r.ok && r.error.code === 'TC_ERR_AUTH', `put with ${storeToken}`);
  }
  const ok = await w.put({ key: 'sec/a', storeToken: 'sesame-0123456789' }, data);
  assert.ok(ok.ok);
  const wrongGet = await w.get({ key: 'sec/a', storeToken: 'wrong-token' });
  assert.ok(!wrongGet.ok && wrongGet.error.code === 'TC_ERR_AUTH');
  const rightGet = await w.get({ key: 'sec/a', storeToken: 'sesame-0123456789' });
  assert.ok(rightGet.ok && rightGet.data!.equals(data));

  const good = { [STORE_TOKEN_HEADER]: 'sesame-0123456789' };
  const wrong = { [STORE_TOKEN_HEADER]: 'wrong-token' };
  assert.equal(errorCode((await controlRequest(d, 'GET', '/v1/objects/stat?key=sec%2Fa', undefined, wrong)).json), 'TC_ERR_AUTH');
  assert.equal((await controlRequest(d, 'GET', '/v1/objects/stat?key=sec%2Fa', undefined, good)).status, 200);
  const hidden = (await controlRequest(d, 'GET', '/v1/objects')).json as ObjectList;
  assert.deepEqual(hidden.objects, []);
  const shown = (await controlRequest(d, 'GET', '/v1/objects', undefined, good)).json as ObjectList;
  assert.deepEqual(
    shown.objects.map((o) => o.key),
    ['sec/a'],
  );
  const del = (await controlRequest(d, 'POST', '/v1/objects/delete', { keys: ['sec/a'] }, wrong)).json as DeleteObjectsResponse;
  assert.equal(del.results[0]!.ok, false);
  assert.equal((del.results[0] as { code: string }).code, 'TC_ERR_AUTH');
  assert.equal(errorCode((await controlRequest(d, 'GET', '/v1/namespaces/sec', undefined, wrong)).json), 'TC_ERR_AUTH');
  const info = await controlRequest(d, 'GET', '/v1/namespaces/sec', undefined, good);
  assert.equal((info.json as { objects: number; residentBytes: number }).objects, 1);
  // Changing the token needs the old one.
  assert.equal(
    errorCode((await controlRequest(d, 'PUT', '/v1/namespaces/sec', { token: 'mine-now-0123456789' }, wrong)).json),
    'TC_ERR_AUTH',
  );
  const list = (await controlRequest(d, 'GET', '/v1/namespaces')).json as { namespaces: { namespace: string }[] };
  assert.ok(list.namespaces.some((n) => n.namespace === 'sec'));
});

test('objects e2e: puts in a transaction are invisible until commit; a failed condition makes none visible', async (t) => {
  const d = await startDaemon(t);
  const w = await wire(t, d);
  const a = await w.put({ key: 'tx/a', txn: 't1' }, randomBytes(10));
  const b = await w.put({ key: 'tx/b', txn: 't1' }, randomBytes(20));
  assert.ok(a.ok && b.ok);
  assert.equal((await controlRequest(d, 'GET', '/v1/objects/stat?key=tx%2Fa')).status, 404);
  const commit = await controlRequest(d, 'POST', '/v1/objects/commit', { txn: 't1', conditions: [{ key: 'tx/m', ifVersion: null }] });
  assert.equal(commit.status, 200, JSON.stringify(commit.json));
  const versions = (commit.json as { versions: Record<string, number> }).versions;
  assert.deepEqual(Object.keys(versions).sort(), ['tx/a', 'tx/b']);
  assert.equal((await controlRequest(d, 'GET', '/v1/objects/stat?key=tx%2Fb')).status, 200);

  const c = await w.put({ key: 'tx/c', txn: 't2' }, randomBytes(5));
  assert.ok(c.ok);
  const lost = await controlRequest(d, 'POST', '/v1/objects/commit', { txn: 't2', conditions: [{ key: 'tx/a', ifVersion: null }] });
  assert.equal(errorCode(lost.json), 'TC_ERR_CONFLICT');
  assert.equal((await controlRequest(d, 'GET', '/v1/objects/stat?key=tx%2Fc')).status, 404);
  const aborted = await controlRequest(d, 'POST', '/v1/objects/abort', { txn: 'never-seen' });
  assert.equal(aborted.status, 200);
});

test('objects e2e: shm hand-off: put through a segment file, commit checks the crc, get leases the segment', async (t) => {
  const d = await startDaemon(t);
  const data = randomBytes(3 << 20);
  const begin = await controlRequest(d, 'POST', '/v1/objects/shm-puts', { key: 'shm/a', size: data.length });
  assert.equal(begin.status, 200, JSON.stringify(begin.json));
  const lease = begin.json as { putId: string; path: string; size: number };
  const f = await open(lease.path, 'r+');
  await f.write(data, 0, data.length, 0);
  await f.close();
  const committed = await controlRequest(d, 'POST', `/v1/objects/shm-puts/${lease.putId}/commit`, { crc: crc32c(data) });
  assert.equal(committed.status, 200, JSON.stringify(committed.json));
  const { version } = committed.json as { version: number; bytes: number };
  // Committing twice: the lease is gone.
  const again = await controlRequest(d, 'POST', `/v1/objects/shm-puts/${lease.putId}/commit`, { crc: crc32c(data) });
  assert.equal(errorCode(again.json), 'TC_ERR_LEASE_NOT_FOUND');

  const get = await controlRequest(d, 'POST', '/v1/objects/shm-gets', { key: 'shm/a', expectBytes: data.length });
  assert.equal(get.status, 200, JSON.stringify(get.json));
  const g = get.json as { leaseId: string; path: string; size: number; version: number; crc: number };
  assert.equal(g.version, version);
  assert.equal(g.crc, crc32c(data));
  assert.ok((await readFile(g.path)).subarray(0, g.size).equals(data));
  // The same object over tcp.
  const w = await wire(t, d);
  const tcp = await w.get({ key: 'shm/a' });
  assert.ok(tcp.ok && tcp.data!.equals(data));
  // A delete while the get lease is held returns at once; the lease then ends cleanly.
  const del = (await controlRequest(d, 'POST', '/v1/objects/delete', { keys: ['shm/a'] })).json as DeleteObjectsResponse;
  assert.equal(del.results[0]!.ok, true);
  assert.equal((await controlRequest(d, 'DELETE', `/v1/objects/shm-gets/${g.leaseId}`)).status, 200);
  assert.equal(errorCode((await controlRequest(d, 'DELETE', `/v1/objects/shm-gets/${g.leaseId}`)).json), 'TC_ERR_LEASE_NOT_FOUND');

  // A wrong crc aborts the put; nothing is visible.
  const b2 = (await controlRequest(d, 'POST', '/v1/objects/shm-puts', { key: 'shm/b', size: 100 })).json as { putId: string };
  const bad = await controlRequest(d, 'POST', `/v1/objects/shm-puts/${b2.putId}/commit`, { crc: 12345 });
  assert.equal(errorCode(bad.json), 'TC_ERR_CHECKSUM');
  assert.equal((await controlRequest(d, 'GET', '/v1/objects/stat?key=shm%2Fb')).status, 404);
  // An aborted put lease.
  const b3 = (await controlRequest(d, 'POST', '/v1/objects/shm-puts', { key: 'shm/c', size: 100 })).json as { putId: string };
  assert.equal((await controlRequest(d, 'DELETE', `/v1/objects/shm-puts/${b3.putId}`)).status, 200);
  // An object in memory is not in a segment: the client falls back to tcp.
  assert.ok((await w.put({ key: 'shm/mem' }, randomBytes(10))).ok);
  const notShm = await controlRequest(d, 'POST', '/v1/objects/shm-gets', { key: 'shm/mem' });
  assert.equal(errorCode(notShm.json), 'TC_ERR_NOT_FOUND');
  assert.equal((notShm.json as { error: { details: { reason: string } } }).error.details.reason, 'not_in_shm');
});

test('objects e2e: with --object-spill, a put beyond --object-memory goes to disk and survives a restart; memory objects are reported lost', async (t) => {
  const dataDir = tempDir(t);
  const args = ['--object-spill', '--object-memory', '1MiB'];
  const d1 = await startDaemon(t, { dataDir, extraArgs: args });
  const w1 = await ObjectWire.open(d1.dataAddress, d1.token);
  const big = randomBytes(3 << 20);
  const onDisk = await w1.put({ key: 'sp/big', crc: crc32c(big) }, big);
  assert.ok(onDisk.ok, JSON.stringify(onDisk));
  assert.ok((await w1.put({ key: 'sp/small' }, randomBytes(100))).ok);
  const tiers = ((await controlRequest(d1, 'GET', '/v1/objects?prefix=sp%2F')).json as ObjectList).objects.map((o) => [o.key, o.tier]);
  assert.deepEqual(tiers, [
    ['sp/big', 'disk'],
    ['sp/small', 'memory'],
  ]);
  w1.close();
  await d1.stop('SIGKILL');
  const d2 = await startDaemon(t, { dataDir, extraArgs: args });
  const w2 = await wire(t, d2);
  const back = await w2.get({ key: 'sp/big' });
  assert.ok(back.ok && back.data!.equals(big) && back.version === onDisk.version);
  const lost = await w2.get({ key: 'sp/small' });
  assert.ok(!lost.ok && lost.error.code === 'TC_ERR_OBJECT_LOST');
  const listed = ((await controlRequest(d2, 'GET', '/v1/objects?prefix=sp%2F')).json as ObjectList).objects;
  assert.equal(listed.find((o) => o.key === 'sp/small')?.lost, true);
  // New versions stay above every version handed out before the restart.
  const next = await w2.put({ key: 'sp/new' }, randomBytes(1));
  assert.ok(next.ok && next.version > onDisk.version);
});

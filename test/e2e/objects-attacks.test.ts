// Objects attacked as a hostile or unlucky user would: a truncated segment file between an shm put and its
// commit, malformed PUT frames and bodies, and clients killed mid-put. Each test pins a defect that was
// found by such an attack (or one that held and must keep holding).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { open, readdir, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '../../src/client/tensorcast-client.js';
import { isTensorcastError } from '../../src/core/errors.js';
import { crc32c, encodeHeader, FrameType } from '../../src/protocol/frames.js';
import type { DeleteObjectsResponse, NamespaceInfoWire } from '../../src/protocol/http/objects.js';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';
import { controlRequest, errorCode } from '../helpers/control-http.js';
import { ObjectWire } from '../helpers/object-wire.js';
import { tempDir } from '../helpers/tmp.js';

async function nsInfo(d: TestDaemon, ns: string): Promise<NamespaceInfoWire> {
  const r = await controlRequest(d, 'GET', `/v1/namespaces/${ns}`);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as NamespaceInfoWire;
}

/** Waits until the namespace holds no pending put and no resident byte (a dropped put frees its room). */
async function drained(d: TestDaemon, ns: string): Promise<NamespaceInfoWire> {
  for (;;) {
    const info = await nsInfo(d, ns);
    if (info.pendingPuts === 0 && info.pendingBytes === 0 && info.pendingFrees === 0) return info;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('objects attack: a segment file truncated between an shm put and its commit fails the commit, the daemon lives', async (t) => {
  const d = await startDaemon(t);
  for (const size of [1 << 20, 64 << 10]) {
    const data = randomBytes(size);
    const begin = await controlRequest(d, 'POST', '/v1/objects/shm-puts', { key: `trunc/a${size}`, size });
    assert.equal(begin.status, 200, JSON.stringify(begin.json));
    const lease = begin.json as { putId: string; path: string };
    await truncate(lease.path, 0);
    const commit = await controlRequest(d, 'POST', `/v1/objects/shm-puts/${lease.putId}/commit`, { crc: crc32c(data) });
    assert.notEqual(commit.status, 200);
    assert.ok(
      ['TC_ERR_SHORT_READ', 'TC_ERR_CHECKSUM', 'TC_ERR_IO'].includes(errorCode(commit.json) as string),
      JSON.stringify(commit.json),
    );
  }
  // The daemon still serves, and the aborted puts hold no room.
  const stats = await nsInfo(d, 'trunc');
  assert.deepEqual([stats.pendingPuts, stats.pendingBytes, stats.objects, stats.residentBytes], [0, 0, 0, 0]);
});

test('objects attack: hostile PUT bodies over raw frames get coded errors; the connection and the daemon live', async (t) => {
  const d = await startDaemon(t);
  const w = await ObjectWire.open(d.dataAddress, d.token);
  t.after(() => w.close());
  // A size far beyond any budget: refused, no room reserved.
  const huge = await w.put({ key: 'hostile/huge', size: 2 ** 52 }, new Uint8Array(0));
  assert.ok(!huge.ok, 'a 4 PiB put is refused');
  assert.ok(
    ['TC_ERR_BUDGET', 'TC_ERR_BACKPRESSURE', 'TC_ERR_INVALID_ARGUMENT', 'TC_ERR_NO_SPACE'].includes(huge.error.code),
    huge.error.code,
  );
  // Keys the validator must refuse, and ones it must take.
  for (const key of ['hostile/../x', 'hostile/..', '../x', 'hostile/a//b', 'hostile/', '/xy', 'hostile/' + 'k'.repeat(1025)]) {
    const r = await w.put({ key }, Buffer.from('x'));
    assert.ok(!r.ok && r.error.code === 'TC_ERR_INVALID_ARGUMENT', `${key.slice(0, 40)}: ${JSON.stringify(r)}`);
  }
  for (const key of ['hostile/' + 'k'.repeat(1024 - 8), 'hostile/ünïcødé/键/🙂']) {
    const r = await w.put({ key }, Buffer.from('y'));
    assert.ok(r.ok, `${key.slice(0, 40)}: ${JSON.stringify(r)}`);
    const g = await w.get({ key });
    assert.ok(g.ok && g.data!.toString() === 'y');
    const st = await controlRequest(d, 'GET', `/v1/objects/stat?key=${encodeURIComponent(key)}`);
    assert.equal(st.status, 200);
  }
  // A PUT frame whose JSON holds a negative, fractional or NaN size (hand-written JSON): coded error, no crash.
  for (const size of ['-1', '1.5', 'NaN', '1e400', '"12"', '9007199254740993']) {
    const json = Buffer.from(`{"key":"hostile/n","size":${size}}`);
    const bad = await ObjectWire.open(d.dataAddress, d.token);
    t.after(() => bad.close());
    bad.raw(Buffer.concat([encodeHeader(FrameType.PUT, 1, json.length, 0, crc32c(json)), json]));
    await bad.whenClosed();
    assert.equal(bad.closedWith?.code, 'TC_ERR_PROTOCOL', `size ${size}`);
  }
  const after = await w.put({ key: 'hostile/after' }, Buffer.from('still here'));
  assert.ok(after.ok);
  const info = await drained(d, 'hostile');
  assert.equal(info.pendingBytes, 0);
});

test('objects attack: bad http bodies on the object and namespace routes are 4xx with a TC_ERR code, never 5xx', async (t) => {
  const d = await startDaemon(t);
  const cases: [string, string, unknown][] = [
    ['POST', '/v1/objects/delete', { keys: 'a/b' }],
    ['POST', '/v1/objects/delete', { keys: [1, null] }],
    ['POST', '/v1/objects/delete', { keys: Array.from({ length: 100_000 }, (_, i) => `ns/k${i}`) }],
    ['POST', '/v1/objects/commit', { txn: 5 }],
    ['POST', '/v1/objects/commit', { txn: 't', conditions: [{ key: 'a/b', ifVersion: -1 }] }],
    ['POST', '/v1/objects/commit', { txn: 't', conditions: [{ key: 'a/b', ifVersion: 'NaN' }] }],
    ['POST', '/v1/objects/abort', {}],
    ['PUT', '/v1/namespaces/..', { maxBytes: 1 }],
    ['PUT', '/v1/namespaces/ok', { maxBytes: -5 }],
    ['PUT', '/v1/namespaces/ok', { maxBytes: 1.5 }],
    ['PUT', '/v1/namespaces/ok', { token: 7 }],
    ['PUT', '/v1/namespaces/ok', { token: '' }],
    ['PUT', '/v1/namespaces/ok', []],
    ['GET', '/v1/namespaces/%2e%2e', undefined],
    ['GET', '/v1/objects/stat', undefined],
    ['GET', '/v1/objects/stat?key=a%2F..%2Fb', undefined],
    ['GET', '/v1/objects?limit=-1', undefined],
    ['GET', '/v1/objects?limit=abc', undefined],
    ['GET', '/v1/objects?limit=99999999999', undefined],
    ['POST', '/v1/objects/shm-puts', { key: 'a/b', size: -1 }],
    ['POST', '/v1/objects/shm-puts', { key: 'a/b', size: 2 ** 52 }],
    ['POST', '/v1/objects/shm-puts', { key: 'a/b', size: 1, timeoutMs: -1 }],
    ['POST', '/v1/objects/shm-puts/nope/commit', { crc: 1 }],
    ['POST', '/v1/objects/shm-puts/nope/commit', { crc: 'x' }],
    ['DELETE', '/v1/objects/shm-puts/..%2F..', undefined],
    ['POST', '/v1/objects/shm-gets', { key: 'a/b', expectBytes: -1 }],
    ['DELETE', '/v1/objects/shm-gets/nope', undefined],
  ];
  for (const [method, path, body] of cases) {
    const r = await controlRequest(d, method, path, body);
    // 503 is TC_ERR_BUDGET (retryable by contract): a put larger than the whole budget.
    assert.ok(
      r.status < 500 || errorCode(r.json) === 'TC_ERR_BUDGET',
      `${method} ${path} ${JSON.stringify(body)?.slice(0, 80)}: ${r.status} ${JSON.stringify(r.json)}`,
    );
    if (r.status >= 400) assert.match(String(errorCode(r.json)), /^TC_ERR_/, `${method} ${path}`);
  }
  // Still serving.
  assert.equal((await controlRequest(d, 'GET', '/v1/namespaces')).status, 200);
});

/** A child process that starts a put (or a get) over raw frames, never finishes it, and says `ready`. */
async function stalledClient(t: TestContext, d: TestDaemon, mode: 'put' | 'get', key: string): Promise<ChildProcess> {
  const wireJs = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'object-wire.js');
  const msgJs = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'protocol', 'messages.js');
  const script = `
    const { ObjectWire } = await import(${JSON.stringify(wireJs)});
    const { Get } = await import(${JSON.stringify(msgJs)});
    const w = await ObjectWire.open(${JSON.stringify(d.dataAddress)}, ${JSON.stringify(d.token)});
    if (${JSON.stringify(mode)} === 'put') void w.put({ key: ${JSON.stringify(key)}, size: 8 << 20 }, new Uint8Array(2 << 20));
    else { w.socket.pause(); w.raw(Get.encode(1, { key: ${JSON.stringify(key)}, credit: 1 << 20 })); }
    setTimeout(() => console.log('ready'), 300);
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => c.toString().includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`stalled client exited with ${code}`)));
  });
  return child;
}

test('objects attack: a client killed -9 mid-put and mid-get leaves nothing visible and frees its room', async (t) => {
  const d = await startDaemon(t);
  const putter = await stalledClient(t, d, 'put', 'killed/p');
  const during = await nsInfo(d, 'killed');
  assert.equal(during.pendingPuts, 1);
  putter.kill('SIGKILL');
  const after = await drained(d, 'killed');
  assert.deepEqual([after.residentBytes, after.objects], [0, 0]);
  assert.equal((await controlRequest(d, 'GET', '/v1/objects/stat?key=killed%2Fp')).status, 404);

  const big = randomBytes(8 << 20);
  const w = await ObjectWire.open(d.dataAddress, d.token);
  t.after(() => w.close());
  assert.ok((await w.put({ key: 'killed/g' }, big)).ok);
  const getter = await stalledClient(t, d, 'get', 'killed/g');
  getter.kill('SIGKILL');
  await new Promise((r) => getter.once('exit', r));
  const del = await controlRequest(d, 'POST', '/v1/objects/delete', { keys: ['killed/g'] });
  assert.equal(del.status, 200);
  const freed = await drained(d, 'killed');
  assert.deepEqual([freed.residentBytes, freed.objects], [0, 0]);
});

test('objects attack: 50 concurrent putters with waitForRoom on a small namespace: every put ends by its deadline, resident stays under maxBytes', async (t) => {
  const d = await startDaemon(t);
  const c = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => c.close());
  const objects = c.objects();
  const maxBytes = 4 << 20;
  await objects.ensureNamespace('crowd', { maxBytes });
  let done = false;
  let maxSeen = 0;
  const watcher = (async () => {
    while (!done) {
      maxSeen = Math.max(maxSeen, (await nsInfo(d, 'crowd')).residentBytes);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const consumer = (async () => {
    while (!done) {
      for (const o of await objects.list('crowd/')) {
        await objects.get(o.key, { transport: 'tcp' }).catch(() => undefined);
        await objects.delete([o.key]);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const data = randomBytes(1 << 20);
  const results = await Promise.allSettled(
    Array.from({ length: 50 }, (_, i) => objects.put(`crowd/k${i}`, data, { transport: 'tcp', waitForRoom: true, timeoutMs: 4000 })),
  );
  done = true;
  await Promise.all([watcher, consumer]);
  for (const r of results) {
    if (r.status === 'rejected')
      assert.ok(isTensorcastError(r.reason) && ['TC_ERR_BACKPRESSURE', 'TC_ERR_TIMEOUT'].includes(r.reason.code), String(r.reason));
  }
  assert.ok(results.some((r) => r.status === 'fulfilled'));
  assert.ok(maxSeen <= maxBytes, `resident ${maxSeen} > ${maxBytes}`);
  await objects.delete((await objects.list('crowd/')).map((o) => o.key));
  const end = await drained(d, 'crowd');
  assert.equal(end.residentBytes, 0);
});

test('objects attack: a delete racing 20 gets of a large object: every get is the whole object or NOT_FOUND, and the bytes are freed', async (t) => {
  const d = await startDaemon(t);
  const c = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => c.close());
  const objects = c.objects();
  const big = randomBytes(24 << 20);
  for (const transport of ['tcp', 'shm'] as const) {
    await objects.put('race/big', big, { transport });
    // Settled at once: a get may fail while the delete is under way (an unhandled rejection fails the test).
    const gets = Promise.allSettled(Array.from({ length: 20 }, () => objects.get('race/big', { transport })));
    await new Promise((r) => setTimeout(r, 10));
    await objects.delete(['race/big']);
    for (const r of await gets) {
      if (r.status === 'fulfilled') assert.ok(Buffer.from(r.value.data).equals(big), `${transport}: a get returned other bytes`);
      else assert.ok(isTensorcastError(r.reason) && r.reason.code === 'TC_ERR_NOT_FOUND', String(r.reason));
    }
    const end = await drained(d, 'race');
    assert.deepEqual([end.residentBytes, end.objects], [0, 0]);
  }
});

test('objects attack: the daemon killed -9 mid-put with --object-spill: the restart leaves no pending file, committed objects intact', async (t) => {
  const dataDir = tempDir(t);
  const args = ['--object-spill', '--object-memory', '1MiB'];
  const d1 = await startDaemon(t, { dataDir, extraArgs: args });
  const w1 = await ObjectWire.open(d1.dataAddress, d1.token);
  t.after(() => w1.close());
  const big = randomBytes(3 << 20);
  assert.ok((await w1.put({ key: 'crash/kept' }, big)).ok);
  const before = await readdir(join(dataDir, 'objects'));
  await stalledClient(t, d1, 'put', 'crash/pending');
  assert.equal((await nsInfo(d1, 'crash')).pendingPuts, 1);
  assert.ok((await readdir(join(dataDir, 'objects'))).length > before.length, 'the pending put has a file');
  await d1.stop('SIGKILL');
  const d2 = await startDaemon(t, { dataDir, extraArgs: args });
  assert.deepEqual((await readdir(join(dataDir, 'objects'))).sort(), before.sort());
  const w2 = await ObjectWire.open(d2.dataAddress, d2.token);
  t.after(() => w2.close());
  const back = await w2.get({ key: 'crash/kept' });
  assert.ok(back.ok && back.data!.equals(big));
  assert.equal((await controlRequest(d2, 'GET', '/v1/objects/stat?key=crash%2Fpending')).status, 404);
});

test('objects attack: a feature-store sample released while being read: the get is whole or NOT_FOUND', async (t) => {
  const d = await startDaemon(t);
  const c = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => c.close());
  const store = c.features('relrace');
  const a = randomBytes(8 << 20);
  const b = randomBytes(4096);
  for (let i = 0; i < 5; i++) {
    const ref = await store.put(`s${i}`, {
      a: { data: a, dtype: 'U8', shape: [a.length] },
      b: { data: b, dtype: 'U8', shape: [b.length] },
    });
    // Settled at once: the get may fail before release returns (an unhandled rejection would fail the test).
    const reading = store.get(ref).then(
      (got) => ({ got, error: undefined }),
      (error: unknown) => ({ got: undefined, error }),
    );
    await store.release(ref);
    const { got, error } = await reading;
    if (got !== undefined) assert.ok(Buffer.from(got.a!.data).equals(a) && Buffer.from(got.b!.data).equals(b));
    else assert.ok(isTensorcastError(error) && error.code === 'TC_ERR_NOT_FOUND', String(error));
  }
  await store.drain();
  const end = await drained(d, 'relrace');
  assert.deepEqual([end.residentBytes, end.objects], [0, 0]);
});

test('objects attack: shm lease abuse: commit twice, wrong store token, a get lease never released does not block a delete', async (t) => {
  const d = await startDaemon(t);
  const good = { 'x-tensorcast-store-token': 'lease-token-0123456789' };
  const wrong = { 'x-tensorcast-store-token': 'not-the-token-01234567' };
  assert.equal((await controlRequest(d, 'PUT', '/v1/namespaces/lease', { token: good['x-tensorcast-store-token'] })).status, 200);
  const data = randomBytes(1 << 20);
  assert.equal(
    errorCode((await controlRequest(d, 'POST', '/v1/objects/shm-puts', { key: 'lease/a', size: data.length }, wrong)).json),
    'TC_ERR_AUTH',
  );
  const begin = await controlRequest(d, 'POST', '/v1/objects/shm-puts', { key: 'lease/a', size: data.length }, good);
  const lease = begin.json as { putId: string; path: string };
  const fh = await open(lease.path, 'r+');
  await fh.write(data, 0, data.length, 0);
  await fh.close();
  assert.equal((await controlRequest(d, 'POST', `/v1/objects/shm-puts/${lease.putId}/commit`, { crc: crc32c(data) })).status, 200);
  assert.equal(
    errorCode((await controlRequest(d, 'POST', `/v1/objects/shm-puts/${lease.putId}/commit`, { crc: crc32c(data) })).json),
    'TC_ERR_LEASE_NOT_FOUND',
  );
  assert.equal(errorCode((await controlRequest(d, 'POST', '/v1/objects/shm-gets', { key: 'lease/a' }, wrong)).json), 'TC_ERR_AUTH');
  const get = await controlRequest(d, 'POST', '/v1/objects/shm-gets', { key: 'lease/a' }, good);
  assert.equal(get.status, 200);
  // Never released: the delete still returns at once and the key is gone; the segment waits for the lease.
  const del = (await controlRequest(d, 'POST', '/v1/objects/delete', { keys: ['lease/a'] }, good)).json as DeleteObjectsResponse;
  assert.deepEqual(del.results, [{ key: 'lease/a', ok: true, existed: true }]);
  assert.equal((await controlRequest(d, 'GET', '/v1/objects/stat?key=lease%2Fa', undefined, good)).status, 404);
  const info = (await controlRequest(d, 'GET', '/v1/namespaces/lease', undefined, good)).json as NamespaceInfoWire;
  assert.equal(info.pendingFrees, 1);
  const leaseId = (get.json as { leaseId: string }).leaseId;
  assert.equal((await controlRequest(d, 'DELETE', `/v1/objects/shm-gets/${leaseId}`)).status < 300, true);
  for (;;) {
    const after = (await controlRequest(d, 'GET', '/v1/namespaces/lease', undefined, good)).json as NamespaceInfoWire;
    if (after.pendingFrees === 0 && after.residentBytes === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
});

test('objects attack: a committed shm object whose segment file was truncated: a tcp get fails, the daemon lives', async (t) => {
  const d = await startDaemon(t);
  const c = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => c.close());
  const objects = c.objects();
  const data = randomBytes(2 << 20);
  await objects.put('cut/a', data, { transport: 'shm' });
  const get = await controlRequest(d, 'POST', '/v1/objects/shm-gets', { key: 'cut/a' });
  const { path, leaseId } = get.json as { path: string; leaseId: string };
  await controlRequest(d, 'DELETE', `/v1/objects/shm-gets/${leaseId}`);
  await truncate(path, 0);
  const r = await objects.get('cut/a', { transport: 'tcp' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(isTensorcastError(r), String(r));
  assert.equal((await controlRequest(d, 'GET', '/v1/namespaces')).status, 200);
});

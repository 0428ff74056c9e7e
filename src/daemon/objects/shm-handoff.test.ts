// The shm hand-off on a real object store: put and get leases end on their own (an uncommitted put is
// aborted and its room freed; an expired get lease lets a delete free the segment), a get lease never blocks
// a delete, and a commit after expiry is TC_ERR_LEASE_NOT_FOUND.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isTensorcastError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { crc32c } from '../../protocol/frames.js';
import { ObjectStore } from '../../store/objects/object-store.js';
import { ObjectShmHandoff } from './shm-handoff.js';

async function setup(t: { after: (fn: () => Promise<void>) => void }, ttlMs: number) {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tc-handoff-'));
  const store = new ObjectStore({ memoryBytes: 64 << 20, shmDir: dir, log: silentLogger, sweepMs: 20 });
  await store.init();
  const handoff = new ObjectShmHandoff(store, { ttlMs });
  t.after(async () => {
    handoff.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, handoff };
}

const until = async (ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok());
};

test('shm hand-off: an uncommitted put lease expires: the put is aborted, its room freed, its commit refused', async (t) => {
  const { store, handoff } = await setup(t, 150);
  const p = await handoff.beginPut({ key: 'ns/a', size: 4096 }, undefined);
  assert.ok(p.expiresAt <= Date.now() + 150);
  assert.equal(store.namespaceInfo('ns', undefined).pendingPuts, 1);
  await until(() => handoff.size.puts === 0);
  assert.equal(store.namespaceInfo('ns', undefined).pendingBytes, 0);
  await assert.rejects(handoff.commitPut(p.putId, 0), (e: unknown) => isTensorcastError(e, 'TC_ERR_LEASE_NOT_FOUND'));
});

test('shm hand-off: a get lease never blocks a delete; the segment is freed once the lease ends or expires', async (t) => {
  // Long enough that a loaded machine does not expire the lease before the delete below is checked.
  const { store, handoff } = await setup(t, 2000);
  const data = Buffer.alloc(8192, 5);
  const p = await handoff.beginPut({ key: 'ns/b', size: data.length }, undefined);
  const f = await open(p.path, 'r+');
  await f.write(data, 0, data.length, 0);
  await f.close();
  const { version } = await handoff.commitPut(p.putId, crc32c(data));
  const g = await handoff.openGet('ns/b', data.length, undefined);
  assert.equal(g.version, version);
  assert.deepEqual(store.delete(['ns/b'], undefined), [{ key: 'ns/b', ok: true, existed: true }]);
  assert.throws(
    () => store.stat('ns/b', undefined),
    (e: unknown) => isTensorcastError(e, 'TC_ERR_NOT_FOUND'),
  );
  assert.equal(store.namespaceInfo('ns', undefined).pendingFrees, 1, 'freed only after the lease');
  // The lease expires on its own: the segment is freed and the lease forgotten (two steps; a loaded CI
  // machine once saw the first before the second).
  await until(() => store.namespaceInfo('ns', undefined).pendingFrees === 0 && handoff.size.gets === 0);
  assert.throws(
    () => handoff.releaseGet(g.leaseId),
    (e: unknown) => isTensorcastError(e, 'TC_ERR_LEASE_NOT_FOUND'),
  );
});

test('shm hand-off: a wrong crc aborts the put; a memory object is not in shm; expectBytes is checked', async (t) => {
  const { store, handoff } = await setup(t, 60_000);
  const p = await handoff.beginPut({ key: 'ns/c', size: 10 }, undefined);
  await assert.rejects(handoff.commitPut(p.putId, 1), (e: unknown) => isTensorcastError(e, 'TC_ERR_CHECKSUM'));
  assert.equal(store.namespaceInfo('ns', undefined).pendingPuts, 0);
  const put = await store.beginPut({ key: 'ns/m', size: 3, deadline: Date.now() + 5000 });
  await put.write(0, new Uint8Array([1, 2, 3]));
  await put.finish();
  await assert.rejects(
    handoff.openGet('ns/m', undefined, undefined),
    (e: unknown) => isTensorcastError(e, 'TC_ERR_NOT_FOUND') && (e.details as { reason?: string }).reason === 'not_in_shm',
  );
  const q = await handoff.beginPut({ key: 'ns/d', size: 0 }, undefined);
  await handoff.commitPut(q.putId, crc32c(Buffer.alloc(0)));
  await assert.rejects(handoff.openGet('ns/d', 1, undefined), (e: unknown) => isTensorcastError(e, 'TC_ERR_SHORT_READ'));
  const r = await handoff.beginPut({ key: 'ns/e', size: 4 }, undefined);
  await handoff.commitPut(r.putId, crc32c(Buffer.alloc(4)));
  await assert.rejects(handoff.openGet('ns/e', 3, undefined), (e: unknown) => isTensorcastError(e, 'TC_ERR_DESTINATION_SIZE'));
  assert.equal(handoff.size.gets, 0);
});

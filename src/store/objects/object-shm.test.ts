import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { crc32c } from '../../bytes/crc32c.js';
import { LATER, openStore, pattern, readBytes } from './test-helpers.js';

test('object shm puts: the client writes the segment file, the commit checks its CRC; the object lives in the segment', async () => {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(join(base, 'tc-objects-shm-'));
  try {
    const store = await openStore({ memoryBytes: 1 << 20, shmDir: dir });
    const bytes = pattern(5000, 9);
    const put = await store.beginPut({ key: 'h/a', size: bytes.length, placement: 'shm', deadline: LATER });
    assert.equal(put.tier, 'shm');
    assert.ok(put.path !== undefined && put.path.startsWith(dir));
    await writeInto(put.path, bytes); // what a same-host client does (one copy)
    const { version } = await put.finish(crc32c(bytes));
    const meta = store.stat('h/a', undefined);
    assert.deepEqual([meta.tier, meta.version, meta.crc], ['shm', version, crc32c(bytes)]);
    assert.equal(store.namespaceInfo('h', undefined).shmBytes, 5000);
    assert.equal(store.memoryBytesUsed, 5000, 'shm bytes count under the object memory budget');
    const lease = store.openRead('h/a', undefined, LATER);
    assert.equal(lease.path, put.path);
    lease.release();
    assert.deepEqual(await readBytes(store, 'h/a', undefined, 1000), bytes);

    const bad = await store.beginPut({ key: 'h/b', size: 10, placement: 'shm', deadline: LATER });
    await writeInto(bad.path!, pattern(10, 1));
    await assert.rejects(bad.finish(crc32c(pattern(10, 2))), { code: 'TC_ERR_CHECKSUM' });
    await assert.rejects(store.beginPut({ key: 'h/c', size: 2 << 20, placement: 'shm', deadline: LATER }), { code: 'TC_ERR_BUDGET' });

    store.delete(['h/a'], undefined);
    await store.close();
    assert.ok(!existsSync(put.path), 'the segment file is removed when the object goes');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('object shm puts: a freed object segment is reused by the next put of its size (renamed), counted inside the budget', async () => {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(join(base, 'tc-objects-shm-'));
  try {
    const store = await openStore({ memoryBytes: 4 << 20, shmDir: dir, poolBytes: 2 << 20 });
    const size = 1 << 20;
    const put = await store.beginPut({ key: 'h/a', size, placement: 'shm', deadline: LATER });
    await writeInto(put.path!, pattern(size, 1));
    await put.finish(crc32c(pattern(size, 1)));
    store.delete(['h/a'], undefined);
    for (let i = 0; i < 50 && store.pooledBytes.idleShmBytes === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(store.pooledBytes.idleShmBytes, size, 'kept idle');
    assert.equal(store.memoryBytesUsed, 0);
    const again = await store.beginPut({ key: 'h/b', size, placement: 'shm', deadline: LATER });
    assert.equal(store.pooledBytes.idleShmBytes, 0, 'taken');
    assert.notEqual(again.path, put.path, 'renamed: the old path no longer opens it');
    assert.ok(!existsSync(put.path!));
    await writeInto(again.path!, pattern(size, 2));
    await again.finish(crc32c(pattern(size, 2)));
    assert.deepEqual(await readBytes(store, 'h/b', undefined, size), pattern(size, 2));
    // Idle segments give way to a put that needs their room.
    store.delete(['h/b'], undefined);
    for (let i = 0; i < 50 && store.pooledBytes.idleShmBytes === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const big = await store.beginPut({ key: 'h/big', size: 4 << 20, placement: 'shm', deadline: LATER });
    assert.equal(store.pooledBytes.idleShmBytes, 0);
    big.abort();
    // An aborted put's segment is never kept (its client may still be writing).
    await store.close();
    assert.ok(!existsSync(again.path!));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Writes `bytes` at the start of an existing file (never truncating it: the daemon has it mapped). */
async function writeInto(path: string, bytes: Uint8Array): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, 0);
  } finally {
    await fh.close();
  }
}

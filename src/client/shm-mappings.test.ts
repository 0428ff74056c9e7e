import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { crc32c } from '../bytes/crc32c.js';
import { native } from '../bytes/native.js';
import { ShmMappings } from './shm-mappings.js';

const MiB = 1 << 20;
const skip = native === undefined ? 'the native addon is not built (TENSORCAST_NATIVE=0 or no compiler)' : false;

test(
  'shm mappings: kept across loads of the same file, replaced when the file is, dropped when idle; a file cut under a copy is TC_ERR_SHORT_READ',
  { skip },
  async (t) => {
    const dir = mkdtempSync('/dev/shm/tensorcast-mappings-test-');
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'lease.bin');
    const data = Buffer.alloc(8 * MiB, 7);
    writeFileSync(path, data);
    const sums = new Uint32Array([crc32c(data.subarray(0, 4 * MiB)), crc32c(data.subarray(4 * MiB))]);
    const mappings = new ShmMappings({ idleMs: 100 });
    t.after(() => mappings.close());
    const a = await mappings.acquire(path, data.length);
    const dst = Buffer.alloc(data.length);
    assert.equal(await native!.copyChunks(a.handle, 0, dst, 4 * MiB, sums), -1);
    assert.ok(dst.equals(data));
    mappings.release(a);
    const b = await mappings.acquire(path, data.length);
    assert.equal(b, a, 'the same file: the mapping is kept');
    // A changed byte is found by its chunk's CRC32C.
    const changed = Buffer.from(data);
    changed[5 * MiB] = 1;
    writeFileSync(path, changed);
    assert.equal(await native!.copyChunks(b.handle, 0, dst, 4 * MiB, sums), 1);
    mappings.release(b);
    // Another file under the same name (the daemon never reuses names; someone else might): a new mapping.
    writeFileSync(join(dir, 'other.bin'), data);
    renameSync(join(dir, 'other.bin'), path);
    const c = await mappings.acquire(path, data.length);
    assert.notEqual(c, a);
    // Cut while mapped: the copy fails with TC_ERR_SHORT_READ instead of killing the process.
    truncateSync(path, MiB);
    await assert.rejects(native!.copyChunks(c.handle, 0, dst, 4 * MiB, sums), { code: 'TC_ERR_SHORT_READ' });
    mappings.release(c);
    assert.equal(mappings.size, 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(mappings.size, 0, 'dropped once idle');
  },
);

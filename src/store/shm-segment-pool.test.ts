import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { silentLogger } from '../core/logger.js';
import { ReplicaCache } from './replica-cache.js';
import { ShmSegment } from './shm-segment.js';
import { reserveSizes, ShmSegmentPool } from './shm-segment-pool.js';

const MiB = 1 << 20;

function shmDir(t: TestContext): string {
  const dir = mkdtempSync('/dev/shm/tensorcast-pool-test-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Fills a segment with `byte`, through its mapping when it has one, else through its file. */
async function fill(seg: ShmSegment, byte: number): Promise<void> {
  if (seg.mapped) for (const w of seg.windows()) w.fill(byte);
  else await seg.file.write(Buffer.alloc(seg.bytes, byte), 0, seg.bytes, 0);
}

test('shm segment: sized, mapped (with the addon), renamed, shrunk without a byte of the old content past its end, closed', async (t) => {
  const dir = shmDir(t);
  const seg = await ShmSegment.create(join(dir, 'a.bin'), 8 * MiB);
  await fill(seg, 0xaa);
  await seg.moveTo(join(dir, 'b.bin'));
  assert.deepEqual(readdirSync(dir), ['b.bin']);
  assert.equal(seg.intact(), true);
  await seg.resize(3 * MiB);
  assert.equal(statSync(seg.path).size, 3 * MiB, 'the file is cut to the new length');
  if (seg.mapped) assert.equal(seg.windows()[0]!.length, 3 * MiB, 'views end at the new end');
  // Grown again: the pages past the old end are fresh (zeros), never the content they had before.
  await seg.resize(5 * MiB);
  const bytes = readFileSync(seg.path);
  assert.equal(bytes.length, 5 * MiB);
  assert.equal(bytes[3 * MiB - 1], 0xaa);
  assert.equal(
    bytes.subarray(3 * MiB).every((b) => b === 0),
    true,
  );
  truncateSync(seg.path, MiB);
  assert.equal(seg.intact(), false, 'a file cut by someone else is not intact');
  await seg.close();
  assert.deepEqual(readdirSync(dir), []);
});

test('shm segment pool: best fit at most twice as large, else the largest smaller; a changed segment is never handed out', async (t) => {
  const dir = shmDir(t);
  const pool = new ShmSegmentPool({ dir, reserveBytes: 0, room: () => Number.MAX_SAFE_INTEGER, log: silentLogger });
  t.after(() => pool.close());
  await pool.init();
  const give = async (name: string, bytes: number): Promise<void> => pool.give(await ShmSegment.create(join(dir, name), bytes));
  await give('x8.bin', 8 * MiB);
  await give('x20.bin', 20 * MiB);
  await give('x64.bin', 64 * MiB);
  await new Promise((r) => setTimeout(r, 50)); // the renames into the pool
  assert.equal(pool.bytes, 92 * MiB);
  assert.equal(pool.covering(12 * MiB), 20 * MiB, 'the smallest that holds it, at most twice as large');
  assert.equal(pool.covering(30 * MiB), 20 * MiB, 'none holds it within twice: the largest smaller one grows');
  assert.equal(pool.covering(4 * MiB), 8 * MiB);
  assert.equal(pool.covering(2 * MiB), 0, 'a small view does not take (and waste) a large segment');
  const taken = pool.claim(12 * MiB)!;
  assert.equal(taken.bytes, 20 * MiB);
  await taken.close();
  // A segment someone truncated while it sat in the pool is freed, not handed out.
  const eight = readdirSync(dir)
    .map((n) => join(dir, n))
    .find((p) => statSync(p).size === 8 * MiB)!;
  truncateSync(eight, 4096);
  assert.equal(pool.claim(4 * MiB), undefined);
  assert.equal(pool.bytes, 64 * MiB);
});

test('shm segment pool: the reserve is allocated at init in halving sizes, within the budget room, and idle segments go after idleMs', async (t) => {
  assert.deepEqual(
    reserveSizes(64 * MiB).map((b) => b / MiB),
    [32, 16, 8, 4],
  );
  assert.deepEqual(reserveSizes(2 * MiB), [2 * MiB]);
  const dir = shmDir(t);
  let room = 40 * MiB;
  const pool: ShmSegmentPool = new ShmSegmentPool({
    dir,
    reserveBytes: 64 * MiB,
    idleMs: 100,
    room: (): number => room - pool.bytes,
    log: silentLogger,
  });
  t.after(() => pool.close());
  await pool.init();
  // 32 + 16 fit the room of 40 MiB only partly: what does not fit is skipped, never pushes the budget.
  assert.ok(pool.bytes <= 40 * MiB, `${pool.bytes} bytes allocated`);
  assert.ok(pool.bytes >= 32 * MiB);
  room = 0;
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(pool.bytes, 0, 'idle segments are freed after idleMs');
  await pool.close();
  assert.deepEqual(readdirSync(dir), []);
});

test('replica cache with a segment pool: spare bytes count under the budget and are freed before any replica is evicted', async (t) => {
  const dir = shmDir(t);
  const pool = new ShmSegmentPool({ dir, reserveBytes: 0, room: () => 0, log: silentLogger });
  t.after(() => pool.close());
  await pool.init();
  const evicted: string[] = [];
  const cache = new ReplicaCache(40 * MiB, (r) => evicted.push(r.key), pool);
  const build = (key: string, bytes: number) => () =>
    Promise.resolve({
      key,
      artifactId: 'a',
      viewId: key,
      tier: 'memory' as const,
      bytes,
      segments: [],
      path: undefined,
      ready: () => Promise.resolve(),
    });
  const a = await cache.acquire('a', 16 * MiB, build('a', 16 * MiB));
  cache.release(a);
  pool.give(await ShmSegment.create(join(dir, 's.bin'), 16 * MiB));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(cache.usedBytes, 32 * MiB, 'the idle segment counts under the budget');
  // 16 MiB more does not fit beside both: the spare segment goes, the idle replica stays.
  const b = await cache.acquire('b', 16 * MiB, build('b', 16 * MiB));
  assert.deepEqual(evicted, []);
  assert.equal(pool.bytes, 0);
  assert.equal(cache.usedBytes, 32 * MiB);
  cache.release(b);
  // A build that takes a spare segment over (recycles) needs only the rest of its bytes.
  pool.give(await ShmSegment.create(join(dir, 't.bin'), 8 * MiB));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(pool.covering(8 * MiB), 8 * MiB);
  const c = await cache.acquire(
    'c',
    8 * MiB,
    () => {
      const seg = pool.claim(8 * MiB);
      assert.ok(seg !== undefined, 'the segment was kept for the build that takes it over');
      void seg.close();
      return build('c', 8 * MiB)();
    },
    undefined,
    true,
  );
  assert.deepEqual(evicted, [], 'the segment taken over covered the build: nothing evicted');
  assert.equal(cache.usedBytes, 40 * MiB);
  cache.release(c);
  // Room beyond what the spare holds comes from the least recently used idle replica.
  const d = await cache.acquire('d', 12 * MiB, build('d', 12 * MiB));
  assert.deepEqual(evicted, ['a']);
  assert.ok(cache.usedBytes <= 40 * MiB);
  cache.release(d);
});

test('shm segment pool: after builds pause, one segment per build size is allocated ahead, within the reserve', async (t) => {
  const dir = shmDir(t);
  const pool = new ShmSegmentPool({ dir, reserveBytes: 16 * MiB, quietMs: 50, room: () => Number.MAX_SAFE_INTEGER, log: silentLogger });
  t.after(() => pool.close());
  await pool.init();
  const start = pool.bytes;
  assert.equal(start, 12 * MiB, 'the start reserve: 8 + 4 MiB');
  // Two builds took the 8 and the 4 MiB segments; each asks for one of its size once builds pause.
  const a = pool.claim(6 * MiB)!;
  const b = pool.claim(3 * MiB)!;
  await Promise.all([a.close(), b.close()]);
  assert.equal(pool.bytes, 0);
  pool.fill();
  pool.fill(); // debounced: one top-up
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(pool.bytes, 0, 'nothing before the pause');
  for (let i = 0; i < 100 && pool.bytes < 9 * MiB; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(pool.bytes, 9 * MiB, 'a 6 and a 3 MiB segment, ready for views like the last ones');
  assert.equal(pool.covering(6 * MiB), 6 * MiB);
});

test('shm segment: close gives the pages back even while another process still holds the file open', async (t) => {
  const dir = shmDir(t);
  const seg = await ShmSegment.create(join(dir, 'a.bin'), 4 * MiB);
  await fill(seg, 0x5a);
  // A client keeps a lease file open (and mapped) after its load; the daemon's close must not leave the
  // pages allocated on tmpfs until that client lets go.
  const kept = openSync(seg.path, 'r');
  t.after(() => closeSync(kept));
  await seg.close();
  assert.deepEqual(readdirSync(dir), []);
  const st = fstatSync(kept);
  assert.equal(st.size, 0, 'the file is emptied before it is removed');
  assert.equal(st.blocks, 0, 'no tmpfs page stays allocated');
});

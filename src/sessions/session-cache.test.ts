// The embedded session cache on memory metadata and a file:// cold tier: appends, reads across entries and
// tiers, truncate, close, swaps, the LRU under pressure, leases between instances, gc, and bad input.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createConnector } from '../connectors/create-connector.js';
import { BPT, GEOMETRY, coldDirUrl, kvBytes, openCache } from '../../test/helpers/session-fixtures.js';
import { MemorySessionMetaStore } from './meta/memory-session-meta-store.js';
import { coldKey, SESSIONS_PREFIX } from './cold-objects.js';
import { geometryHash } from './geometry.js';

const readAll = async (cache: Awaited<ReturnType<typeof openCache>>, id: string, start: number, end: number): Promise<Buffer> => {
  const into = Buffer.alloc((end - start) * BPT);
  await cache.read(id, { tokenStart: start, tokenEnd: end }, { into });
  return into;
};

test('session cache: append, read across entries, stat, list', async (t) => {
  const cache = await openCache(t);
  const s = await cache.create({ sessionId: 'chat-1', geometry: GEOMETRY });
  assert.equal(s.tokens, 0);
  assert.equal(s.geometryHash, geometryHash(GEOMETRY));
  const a = kvBytes(5, 1);
  const b = kvBytes(7, 2);
  const r1 = await cache.append('chat-1', 0, a);
  assert.deepEqual(r1, { sessionId: 'chat-1', tokenOffset: 0, tokenLength: 5, tokens: 5, version: r1.version });
  const r2 = await cache.append('chat-1', 5, b);
  assert.equal(r2.tokens, 12);
  assert.ok(r2.version > r1.version);
  const all = Buffer.concat([a, b]);
  assert.deepEqual(await readAll(cache, 'chat-1', 0, 12), all);
  assert.deepEqual(await readAll(cache, 'chat-1', 3, 9), all.subarray(3 * BPT, 9 * BPT));
  const st = await cache.stat('chat-1');
  assert.equal(st.entries, 2);
  assert.equal(st.bytes, 12 * BPT);
  assert.equal(st.hotBytes, 12 * BPT);
  assert.equal(st.residency, 'hot');
  await cache.create({ sessionId: 'chat-0', geometry: GEOMETRY });
  assert.deepEqual(
    (await cache.list()).map((x) => x.sessionId),
    ['chat-0', 'chat-1'],
  );
  const stats = await cache.stats();
  assert.equal(stats.hotBytes, 12 * BPT);
  assert.equal(stats.hotSessions, 1);
});

test('session cache: swap out and in; a read of a cold session swaps it in first', async (t) => {
  const events: string[] = [];
  const cache = await openCache(t, { onSwap: (e) => events.push(`${e.direction} ${e.reason} ${e.sessionId} ${e.bytes}`) });
  await cache.create({ sessionId: 's', geometry: GEOMETRY });
  const kv = kvBytes(10, 3);
  await cache.append('s', 0, kv);
  const out = await cache.swapOut('s');
  assert.equal(out.bytes, 10 * BPT);
  assert.equal((await cache.stat('s')).residency, 'cold');
  assert.equal((await cache.stats()).hotBytes, 0);
  const into = Buffer.alloc(10 * BPT);
  const r = await cache.read('s', { tokenStart: 0, tokenEnd: 10 }, { into });
  assert.equal(r.hit, false);
  assert.deepEqual(into, kv);
  assert.equal((await cache.stat('s')).residency, 'hot');
  assert.equal((await cache.swapIn('s')).bytes, 0);
  await cache.swapOut('s');
  assert.equal((await cache.swapIn('s')).bytes, 10 * BPT);
  const stats = await cache.stats();
  assert.equal(stats.swapsIn, 2);
  assert.equal(stats.swapsOut, 2);
  assert.equal(stats.misses, 1);
  const b = 10 * BPT;
  assert.deepEqual(events, [`out request s ${b}`, `in request s ${b}`, `out request s ${b}`, `in request s ${b}`]);
});

test('session cache: truncate cuts an entry; close frees every tier', async (t) => {
  const cold = coldDirUrl(t);
  const cache = await openCache(t, { cold });
  const c = await createConnector(cold);
  t.after(() => c.close());
  await cache.create({ sessionId: 's', geometry: GEOMETRY });
  const a = kvBytes(6, 4);
  const b = kvBytes(6, 5);
  await cache.append('s', 0, a);
  await cache.append('s', 6, b);
  const st = await cache.truncate('s', 8);
  assert.equal(st.tokens, 8);
  assert.equal(st.entries, 2);
  assert.deepEqual(await readAll(cache, 's', 0, 8), Buffer.concat([a, b.subarray(0, 2 * BPT)]));
  await assert.rejects(cache.read('s', { tokenStart: 0, tokenEnd: 9 }, { into: Buffer.alloc(9 * BPT) }), { code: 'TC_ERR_SOURCE_RANGE' });
  assert.equal((await c.list(SESSIONS_PREFIX)).length, 2, 'the cut entry object is replaced');
  await cache.append('s', 8, kvBytes(1, 6));
  await cache.swapOut('s');
  assert.deepEqual(await readAll(cache, 's', 7, 9), Buffer.concat([b.subarray(BPT, 2 * BPT), kvBytes(1, 6)]));
  assert.equal((await cache.truncate('s', 0)).tokens, 0);
  assert.equal((await c.list(SESSIONS_PREFIX)).length, 0);
  await cache.append('s', 0, a);
  await cache.close('s');
  assert.equal((await c.list(SESSIONS_PREFIX)).length, 0);
  assert.equal((await cache.stats()).hotBytes, 0);
  await assert.rejects(cache.stat('s'), { code: 'TC_ERR_NOT_FOUND' });
  await assert.rejects(cache.close('s'), { code: 'TC_ERR_NOT_FOUND' });
});

test('session cache: bad input is refused with a coded error and changes nothing', async (t) => {
  const cache = await openCache(t);
  await cache.create({ sessionId: 's', geometry: GEOMETRY });
  await cache.append('s', 0, kvBytes(4, 1));
  const before = await cache.stat('s');
  const other = geometryHash({ ...GEOMETRY, modelId: 'other' });
  const cases: [string, () => Promise<unknown>, string, string?][] = [
    ['wrong hash (append)', () => cache.append('s', 4, kvBytes(1, 2), { expectHash: other }), 'TC_ERR_INCOMPATIBLE'],
    [
      'wrong hash (read)',
      () => cache.read('s', { tokenStart: 0, tokenEnd: 1 }, { into: Buffer.alloc(BPT), expectHash: other }),
      'TC_ERR_INCOMPATIBLE',
    ],
    ['wrong hash (truncate)', () => cache.truncate('s', 1, { expectHash: other }), 'TC_ERR_INCOMPATIBLE'],
    ['gap', () => cache.append('s', 5, kvBytes(1, 2)), 'TC_ERR_INVALID_ARGUMENT', 'gap'],
    ['overlap', () => cache.append('s', 3, kvBytes(1, 2)), 'TC_ERR_INVALID_ARGUMENT', 'overlap'],
    ['partial token', () => cache.append('s', 4, Buffer.alloc(BPT + 1)), 'TC_ERR_INVALID_ARGUMENT', 'partial_token'],
    ['empty append', () => cache.append('s', 4, Buffer.alloc(0)), 'TC_ERR_INVALID_ARGUMENT', 'empty'],
    ['negative offset', () => cache.append('s', -1, kvBytes(1, 2)), 'TC_ERR_INVALID_ARGUMENT'],
    ['beyond the end', () => cache.read('s', { tokenStart: 2, tokenEnd: 5 }, { into: Buffer.alloc(3 * BPT) }), 'TC_ERR_SOURCE_RANGE'],
    ['reversed range', () => cache.read('s', { tokenStart: 3, tokenEnd: 1 }, { into: Buffer.alloc(0) }), 'TC_ERR_SOURCE_RANGE'],
    ['empty range', () => cache.read('s', { tokenStart: 2, tokenEnd: 2 }, { into: Buffer.alloc(0) }), 'TC_ERR_SOURCE_RANGE'],
    ['wrong into size', () => cache.read('s', { tokenStart: 0, tokenEnd: 2 }, { into: Buffer.alloc(BPT) }), 'TC_ERR_DESTINATION_SIZE'],
    ['truncate beyond the end', () => cache.truncate('s', 5), 'TC_ERR_SOURCE_RANGE'],
    ['unknown session (append)', () => cache.append('nope', 0, kvBytes(1, 2)), 'TC_ERR_NOT_FOUND'],
    ['unknown session (read)', () => cache.read('nope', { tokenStart: 0, tokenEnd: 1 }, { into: Buffer.alloc(BPT) }), 'TC_ERR_NOT_FOUND'],
    ['unknown session (stat)', () => cache.stat('nope'), 'TC_ERR_NOT_FOUND'],
    ['unknown session (swap-in)', () => cache.swapIn('nope'), 'TC_ERR_NOT_FOUND'],
    ['bad id', () => cache.stat('a/b'), 'TC_ERR_INVALID_ARGUMENT'],
    ['bad geometry', () => cache.create({ geometry: { ...GEOMETRY, layers: 0 } }), 'TC_ERR_INVALID_ARGUMENT'],
    ['duplicate id', () => cache.create({ sessionId: 's', geometry: GEOMETRY }), 'TC_ERR_CONFLICT'],
  ];
  for (const [name, op, code, reason] of cases) {
    await assert.rejects(op(), (e: { code?: string; details?: { reason?: string } }) => {
      assert.equal(e.code, code, name);
      if (reason !== undefined) assert.equal(e.details?.reason, reason, name);
      return true;
    });
  }
  const after = await cache.stat('s');
  assert.equal(after.version, before.version);
  assert.equal(after.tokens, 4);
  assert.deepEqual(await readAll(cache, 's', 0, 4), kvBytes(4, 1));
});

test('session cache: the LRU swaps out idle sessions, never a pinned one; a session larger than the budget is served from cold', async (t) => {
  const cache = await openCache(t, { hot: { budgetBytes: 20 * BPT } });
  for (const id of ['a', 'b', 'c']) await cache.create({ sessionId: id, geometry: GEOMETRY });
  await cache.append('a', 0, kvBytes(8, 1));
  // A read of 'a' in progress pins it while 'b' and 'c' fill the tier.
  const reading = await cache.openRead('a', { tokenStart: 0, tokenEnd: 8 });
  await cache.append('b', 0, kvBytes(8, 2));
  await cache.append('c', 0, kvBytes(8, 3));
  assert.equal((await cache.stat('a')).residency, 'hot', 'pinned: not swapped out');
  assert.equal((await cache.stat('b')).residency, 'cold', 'least recently used idle session went');
  assert.equal((await cache.stat('c')).residency, 'hot');
  const chunks: Buffer[] = [];
  for await (const chunk of reading.chunks()) chunks.push(Buffer.from(chunk));
  reading.close();
  assert.deepEqual(Buffer.concat(chunks), kvBytes(8, 1));
  assert.ok((await cache.stats()).hotBytes <= 20 * BPT);
  await cache.create({ sessionId: 'big', geometry: GEOMETRY });
  await cache.append('big', 0, kvBytes(21, 4));
  assert.equal((await cache.stat('big')).residency, 'cold');
  assert.deepEqual(await readAll(cache, 'big', 0, 21), kvBytes(21, 4));
  await assert.rejects(cache.swapIn('big'), { code: 'TC_ERR_BUDGET' });
  assert.ok((await cache.stats()).hotBytes <= 20 * BPT);
});

test('session cache: prepareAppend lands the bytes in place; abort records nothing and gives the room back', async (t) => {
  const cache = await openCache(t);
  await cache.create({ sessionId: 's', geometry: GEOMETRY });
  const p = await cache.prepareAppend('s', 0, 3 * BPT);
  assert.equal((await cache.stats()).hotBytes, 3 * BPT);
  p.dest.set(kvBytes(3, 9));
  const r = await p.commit();
  assert.equal(r.tokens, 3);
  const q = await cache.prepareAppend('s', 3, 2 * BPT);
  q.abort();
  q.abort();
  await assert.rejects(q.commit(), { code: 'TC_ERR_INVALID_ARGUMENT' });
  // The abort lets the session go (its lease release is asynchronous): a next append succeeds.
  await cache.append('s', 3, kvBytes(2, 10));
  assert.equal((await cache.stats()).hotBytes, 5 * BPT);
  assert.deepEqual(await readAll(cache, 's', 0, 5), Buffer.concat([kvBytes(3, 9), kvBytes(2, 10)]));
  await assert.rejects(cache.prepareAppend('s', 4, BPT), { code: 'TC_ERR_INVALID_ARGUMENT' });
});

test('session cache: an append larger than one buffer can hold is TC_ERR_INVALID_ARGUMENT and leaves the session free', async (t) => {
  const cache = await openCache(t, { lockTimeoutMs: 5_000 });
  await cache.create({ sessionId: 's', geometry: GEOMETRY });
  for (const size of [BPT * 2 ** 30, BPT * 2 ** 40]) {
    await assert.rejects(cache.prepareAppend('s', 0, size), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'TC_ERR_INVALID_ARGUMENT', String(e));
      assert.equal((e as { details: Record<string, unknown> }).details['reason'], 'too_large');
      return true;
    });
  }
  // Not held: the next append takes the lock (it failed with TC_ERR_TIMEOUT when allocation threw).
  await cache.append('s', 0, kvBytes(2, 1), { timeoutMs: 5_000 });
  assert.equal((await cache.stats()).hotBytes, 2 * BPT);
});

test('session cache: two instances on one store and cold tier: one writer at a time, the other continues the session', async (t) => {
  const cold = coldDirUrl(t);
  const meta = new MemorySessionMetaStore();
  const a = await openCache(t, { cold, meta, owner: 'a' });
  const b = await openCache(t, { cold, meta, owner: 'b' });
  await a.create({ sessionId: 's', geometry: GEOMETRY });
  await a.append('s', 0, kvBytes(4, 1));
  await b.append('s', 4, kvBytes(4, 2));
  const held = await a.prepareAppend('s', 8, BPT);
  await assert.rejects(b.append('s', 8, kvBytes(1, 3)), { code: 'TC_ERR_CONFLICT' });
  held.dest.set(kvBytes(1, 4));
  await held.commit();
  // a's copy of its own entry stays valid; b's entry is swapped in.
  const expected = Buffer.concat([kvBytes(4, 1), kvBytes(4, 2), kvBytes(1, 4)]);
  assert.deepEqual(await readAll(a, 's', 0, 9), expected);
  assert.deepEqual(await readAll(b, 's', 0, 9), expected);
  assert.equal((await b.stats()).leaseConflicts, 1);
  // b truncates: a's stale copies are not used.
  await b.truncate('s', 2);
  await b.append('s', 2, kvBytes(2, 5));
  assert.deepEqual(await readAll(a, 's', 0, 4), Buffer.concat([kvBytes(2, 1), kvBytes(2, 5)]));
});

test('session cache: gc deletes objects no session references, keeps referenced ones', async (t) => {
  // A cold directory not created yet (nothing written): nothing to collect.
  const fresh = await openCache(t, { cold: `${coldDirUrl(t)}/not-yet` });
  assert.deepEqual(await fresh.gc(), { scanned: 0, deleted: 0, deletedBytes: 0 });
  const cold = coldDirUrl(t);
  const cache = await openCache(t, { cold });
  const c = await createConnector(cold);
  t.after(() => c.close());
  await cache.create({ sessionId: 's', geometry: GEOMETRY });
  await cache.append('s', 0, kvBytes(3, 1));
  // A crash between a cold write and its metadata update, in an earlier life: an object no record names.
  await c.write(coldKey('s', 3, 2, Date.now() - 60_000), kvBytes(2, 2));
  await c.write(coldKey('gone', 0, 2, Date.now() - 60_000), kvBytes(2, 2));
  // Written just now, younger than the grace period: perhaps an append in flight, spared.
  const young = coldKey('other', 0, 1);
  await c.write(young, kvBytes(1, 3));
  const r = await cache.gc();
  assert.equal(r.scanned, 4);
  assert.equal(r.deleted, 2);
  assert.equal(r.deletedBytes, 4 * BPT);
  const left = (await c.list(SESSIONS_PREFIX)).map((o) => o.key);
  assert.equal(left.length, 2);
  assert.ok(left.includes(young));
  await cache.swapOut('s');
  assert.deepEqual(await readAll(cache, 's', 0, 3), kvBytes(3, 1));
});

test('session cache: a damaged cold copy is TC_ERR_CHECKSUM on a cold read', async (t) => {
  const cold = coldDirUrl(t);
  const cache = await openCache(t, { cold });
  const c = await createConnector(cold);
  t.after(() => c.close());
  await cache.create({ sessionId: 's', geometry: GEOMETRY });
  await cache.append('s', 0, kvBytes(3, 1));
  await cache.swapOut('s');
  const [obj] = await c.list(SESSIONS_PREFIX);
  await c.write(obj!.key, kvBytes(3, 2));
  await assert.rejects(readAll(cache, 's', 0, 3), { code: 'TC_ERR_CHECKSUM' });
  await assert.rejects(cache.swapIn('s'), { code: 'TC_ERR_CHECKSUM' });
  assert.equal((await cache.stats()).hotBytes, 0);
});

test('session cache: a large entry is read from cold in parts, each checksummed', async (t) => {
  const cold = coldDirUrl(t);
  const tokens = (20 << 20) / BPT;
  const cache = await openCache(t, { cold, hot: { budgetBytes: 64 << 20 } });
  const c = await createConnector(cold);
  t.after(() => c.close());
  await cache.create({ sessionId: 's', geometry: GEOMETRY });
  const kv = kvBytes(tokens, 11);
  await cache.append('s', 0, kv);
  await cache.swapOut('s');
  assert.equal((await cache.swapIn('s')).bytes, kv.length);
  await cache.swapOut('s');
  const into = Buffer.alloc(kv.length);
  await cache.read('s', { tokenStart: 0, tokenEnd: tokens }, { into });
  assert.ok(into.equals(kv));
  await cache.swapOut('s');
  const [obj] = await c.list(SESSIONS_PREFIX);
  const damaged = Buffer.from(kv);
  damaged[17 << 20] = damaged[17 << 20]! ^ 1;
  await c.write(obj!.key, damaged);
  await assert.rejects(cache.swapIn('s'), { code: 'TC_ERR_CHECKSUM' });
  await assert.rejects(cache.read('s', { tokenStart: 0, tokenEnd: tokens }, { into }), { code: 'TC_ERR_CHECKSUM' });
  assert.equal((await cache.stats()).hotBytes, 0);
});

test('session cache: shutdown lets running operations finish and refuses new ones', async (t) => {
  const cache = await openCache(t);
  await cache.create({ sessionId: 's', geometry: GEOMETRY });
  const pending = await cache.prepareAppend('s', 0, 2 * BPT);
  const stopping = cache.shutdown();
  await assert.rejects(cache.stat('s'), { code: 'TC_ERR_SHUTTING_DOWN' });
  await assert.rejects(cache.append('s', 0, kvBytes(1, 1)), { code: 'TC_ERR_SHUTTING_DOWN' });
  pending.dest.set(kvBytes(2, 1));
  assert.equal((await pending.commit()).tokens, 2);
  await stopping;
  assert.equal((await cache.stats()).hotBytes, 0);
});

test('session cache: cold-only appends in flight stay within the hot budget together (one alone may pass it)', async (t) => {
  // Budget 64 tokens; sessions of 70 tokens cannot be hot, so their appends land in buffers outside the tier.
  const cache = await openCache(t);
  for (const id of ['a', 'b']) {
    await cache.create({ sessionId: id, geometry: GEOMETRY });
    await cache.append(id, 0, kvBytes(70, 1));
  }
  const big = await cache.prepareAppend('a', 70, 80 * BPT);
  await assert.rejects(cache.prepareAppend('b', 70, 10 * BPT), (e: unknown) => {
    assert.equal((e as { code?: string }).code, 'TC_ERR_BUDGET', String(e));
    return true;
  });
  big.dest.set(kvBytes(80, 2));
  assert.equal((await big.commit()).tokens, 150);
  // Committed: its buffer no longer counts, and the refused session was let go.
  const next = await cache.prepareAppend('b', 70, 10 * BPT, { timeoutMs: 5_000 });
  const other = await cache.prepareAppend('a', 150, 10 * BPT);
  other.abort();
  next.dest.set(kvBytes(10, 3));
  await next.commit();
  assert.deepEqual(await readAll(cache, 'b', 70, 80), kvBytes(10, 3));
  assert.deepEqual(await readAll(cache, 'a', 70, 150), kvBytes(80, 2));
});

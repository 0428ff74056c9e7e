// SAPPEND and SREAD served by a real SessionCache (memory metadata, file:// cold tier, a small hot budget) on a
// real data-plane server, through the SDK's connection and a raw-frame client: bytes checked against a model,
// the hot tier within its budget, refusals that change nothing, and failed transfers (bad CRC, disconnect,
// silent client) that record nothing, give the room back and leave the session free for the next writer.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { silentLogger } from '../../core/logger.js';
import { tcError } from '../../core/errors.js';
import { encodeDataHeader, FrameType } from '../../protocol/frames.js';
import { SAppend } from '../../protocol/session-messages.js';
import type { SessionCache } from '../../sessions/session-cache.js';
import { DataConnection } from '../../transport/data-connection.js';
import { DataServer } from '../../transport/data-server.js';
import { ObjectWire } from '../../../test/helpers/object-wire.js';
import { BPT, GEOMETRY, kvBytes, openCache } from '../../../test/helpers/session-fixtures.js';

const TOKEN = 'a-token-of-enough-length';

async function serve(t: TestContext, cache: SessionCache, stallTimeoutMs?: number): Promise<string> {
  const server = new DataServer({
    token: TOKEN,
    daemonId: 'd-sessions',
    handler: { serve: () => Promise.reject(tcError('TC_ERR_NOT_FOUND', 'no loads')) },
    sessions: cache,
    log: silentLogger,
    frameBytes: 4096,
    ...(stallTimeoutMs === undefined ? {} : { stallTimeoutMs }),
  });
  const address = await server.listen('127.0.0.1', 0);
  t.after(() => server.close(100));
  return address;
}

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    await new Promise((res) => setTimeout(res, 20));
  }
  assert.fail(what);
}

test('session frames on a real cache: appends and reads over the data plane match a model; the hot tier stays within its budget', async (t) => {
  const budget = 512 * BPT;
  const cache = await openCache(t, { hot: { budgetBytes: budget } });
  const address = await serve(t, cache);
  const conns = await Promise.all([DataConnection.open(address, TOKEN), DataConnection.open(address, TOKEN)]);
  t.after(() => conns.forEach((c) => c.close()));
  const model = new Map<string, Buffer[]>();
  for (let i = 0; i < 8; i++) {
    await cache.create({ sessionId: `s${i}`, geometry: GEOMETRY });
    model.set(`s${i}`, []);
  }
  let seed = 1;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  for (let step = 0; step < 120; step++) {
    const id = `s${rnd(8)}`;
    const parts = model.get(id)!;
    const tokens = parts.reduce((n, p) => n + p.length / BPT, 0);
    const conn = conns[step % 2]!;
    if (rnd(3) > 0 || tokens === 0) {
      const kv = kvBytes(1 + rnd(20), step);
      const r = await conn.sessionAppend({ sessionId: id, tokenOffset: tokens, timeoutMs: 60_000 }, kv);
      parts.push(kv);
      assert.equal(r.tokens, tokens + kv.length / BPT);
    } else {
      const a = rnd(tokens);
      const b = a + 1 + rnd(tokens - a);
      const into = Buffer.alloc((b - a) * BPT);
      const r = await conn.sessionRead({ sessionId: id, tokenStart: a, tokenEnd: b, timeoutMs: 60_000 }, into);
      assert.equal(r.bytes, into.length);
      assert.ok(into.equals(Buffer.concat(parts).subarray(a * BPT, b * BPT)), `${id} [${a}, ${b}) at step ${step}`);
    }
    const stats = await cache.stats();
    assert.ok(stats.hotBytes <= budget, `hot ${stats.hotBytes} > budget ${budget}`);
  }
  // Every session, whole, and one larger than the hot budget (served from cold).
  const big = kvBytes(600, 999);
  await conns[0].sessionAppend({ sessionId: 's0', tokenOffset: Buffer.concat(model.get('s0')!).length / BPT, timeoutMs: 60_000 }, big);
  model.get('s0')!.push(big);
  for (const [id, parts] of model) {
    const all = Buffer.concat(parts);
    if (all.length === 0) continue;
    const into = Buffer.alloc(all.length);
    await conns[1].sessionRead({ sessionId: id, tokenStart: 0, tokenEnd: all.length / BPT, timeoutMs: 60_000 }, into);
    assert.ok(into.equals(all), id);
  }
  // Sessions left the hot tier and came back (counted as misses; the swap counters are the cache's business).
  const final = await cache.stats();
  assert.ok(final.misses > 0 && final.hotBytes <= budget, JSON.stringify(final));
});

test('session frames on a real cache: bad input is a coded error before any byte moves, and changes nothing', async (t) => {
  const cache = await openCache(t);
  const w = await ObjectWire.open(await serve(t, cache), TOKEN);
  t.after(() => w.close());
  const s = await cache.create({ sessionId: 'b', geometry: GEOMETRY });
  const first = await w.sappend({ sessionId: 'b', tokenOffset: 0 }, kvBytes(4, 1));
  assert.ok(first.ok && first.tokens === 4, JSON.stringify(first));
  const before = await cache.stat('b');
  const hotBefore = (await cache.stats()).hotBytes;
  const credits = w.seen.filter((x) => x === FrameType.CREDIT).length;
  const appends = [
    { name: 'gap', r: await w.sappend({ sessionId: 'b', tokenOffset: 5 }, kvBytes(1, 2)), code: 'TC_ERR_INVALID_ARGUMENT', reason: 'gap' },
    {
      name: 'overlap',
      r: await w.sappend({ sessionId: 'b', tokenOffset: 2 }, kvBytes(1, 2)),
      code: 'TC_ERR_INVALID_ARGUMENT',
      reason: 'overlap',
    },
    {
      name: 'partial',
      r: await w.sappend({ sessionId: 'b', tokenOffset: 4 }, Buffer.alloc(BPT + 3)),
      code: 'TC_ERR_INVALID_ARGUMENT',
      reason: 'partial_token',
    },
    {
      name: 'hash',
      r: await w.sappend({ sessionId: 'b', tokenOffset: 4, expectHash: '0'.repeat(32) }, kvBytes(1, 2)),
      code: 'TC_ERR_INCOMPATIBLE',
    },
    { name: 'unknown', r: await w.sappend({ sessionId: 'nobody', tokenOffset: 0 }, kvBytes(1, 2)), code: 'TC_ERR_NOT_FOUND' },
    { name: 'bad id', r: await w.sappend({ sessionId: 'a b', tokenOffset: 0 }, kvBytes(1, 2)), code: 'TC_ERR_INVALID_ARGUMENT' },
  ];
  for (const { name, r, code, reason } of appends) {
    assert.ok(!r.ok && r.error.code === code, `${name}: ${JSON.stringify(r)}`);
    if (reason !== undefined && !r.ok) assert.equal(r.error.details['reason'], reason, name);
  }
  assert.equal(w.seen.filter((x) => x === FrameType.CREDIT).length, credits, 'no CREDIT for a refused append');
  const infos = w.seen.filter((x) => x === FrameType.INFO).length;
  const reads = [
    {
      name: 'beyond the end',
      r: await w.sread({ sessionId: 'b', tokenStart: 0, tokenEnd: 5, expectBytes: 5 * BPT }),
      code: 'TC_ERR_SOURCE_RANGE',
    },
    { name: 'reversed', r: await w.sread({ sessionId: 'b', tokenStart: 3, tokenEnd: 1, expectBytes: 0 }), code: 'TC_ERR_SOURCE_RANGE' },
    {
      name: 'into',
      r: await w.sread({ sessionId: 'b', tokenStart: 0, tokenEnd: 4, expectBytes: 4 * BPT + 1 }),
      code: 'TC_ERR_DESTINATION_SIZE',
    },
    {
      name: 'hash',
      r: await w.sread({ sessionId: 'b', tokenStart: 0, tokenEnd: 1, expectBytes: BPT, expectHash: '0'.repeat(32) }),
      code: 'TC_ERR_INCOMPATIBLE',
    },
    { name: 'unknown', r: await w.sread({ sessionId: 'nobody', tokenStart: 0, tokenEnd: 1, expectBytes: BPT }), code: 'TC_ERR_NOT_FOUND' },
  ];
  for (const { name, r, code } of reads) assert.ok(!r.ok && r.error.code === code, `${name}: ${JSON.stringify(r)}`);
  assert.equal(w.seen.filter((x) => x === FrameType.INFO).length, infos, 'no INFO for a refused read');
  const after = await cache.stat('b');
  assert.equal(after.tokens, before.tokens);
  assert.equal(after.version, before.version);
  assert.equal((await cache.stats()).hotBytes, hotBefore);
  const ok = await w.sappend({ sessionId: 'b', tokenOffset: 4, expectHash: s.geometryHash }, kvBytes(2, 3));
  assert.ok(ok.ok && ok.tokens === 6, JSON.stringify(ok));
  assert.equal(w.closedWith, undefined);
});

test('session frames on a real cache: a bad CRC, a disconnect and a silent client abort the append; the next writer gets the session', async (t) => {
  const cache = await openCache(t, { hot: { budgetBytes: 4096 * BPT }, gcGraceMs: 0 });
  const address = await serve(t, cache, 500);
  await cache.create({ sessionId: 'c', geometry: GEOMETRY });
  const hot0 = (await cache.stats()).hotBytes;
  const data = kvBytes(2000, 7);
  // A bad frame checksum.
  const w = await ObjectWire.open(address, TOKEN);
  t.after(() => w.close());
  const bad = await w.sappend({ sessionId: 'c', tokenOffset: 0 }, data, { frameBytes: 4096, corruptFrame: 5 });
  assert.ok(!bad.ok && bad.error.code === 'TC_ERR_CHECKSUM', JSON.stringify(bad));
  // A client that goes silent mid-append.
  const silent = await w.sappend({ sessionId: 'c', tokenOffset: 0, size: data.length }, data.subarray(0, 100 * BPT));
  assert.ok(!silent.ok && silent.error.code === 'TC_ERR_TIMEOUT', JSON.stringify(silent));
  // A connection closed mid-append.
  const x = await ObjectWire.open(address, TOKEN);
  x.raw(SAppend.encode(1, { sessionId: 'c', tokenOffset: 0, size: data.length }));
  for (let i = 0; i < 500 && !x.seen.includes(FrameType.CREDIT); i++) await new Promise((res) => setTimeout(res, 20));
  const half = data.subarray(0, 1000 * BPT);
  x.raw(Buffer.concat([encodeDataHeader(1, 0, half), half]));
  await new Promise((res) => setTimeout(res, 50));
  x.close();
  await until('the room is given back', async () => (await cache.stats()).hotBytes === hot0);
  assert.equal((await cache.stat('c')).tokens, 0);
  // The session is free: the next append (from another connection) succeeds, and reads back whole.
  const conn = await DataConnection.open(address, TOKEN);
  t.after(() => conn.close());
  const r = await conn.sessionAppend({ sessionId: 'c', tokenOffset: 0, timeoutMs: 60_000 }, data);
  assert.equal(r.tokens, 2000);
  const into = Buffer.alloc(data.length);
  await conn.sessionRead({ sessionId: 'c', tokenStart: 0, tokenEnd: 2000, timeoutMs: 60_000 }, into);
  assert.ok(into.equals(data));
  // Nothing of the failed appends was left in the cold tier.
  const gc = await cache.gc();
  assert.equal(gc.deleted, 0);
});

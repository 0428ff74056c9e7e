// The SDK's client.sessions() against a real daemon process (--sessions-cold file://, the default SQLite
// metadata): every operation of SessionCacheApi round trip, appends and reads over the data plane (SAPPEND /
// SREAD) checked byte for byte, bad input as clear coded errors that change nothing, and a daemon without
// sessions answering the data plane with TC_ERR_NOT_FOUND.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { connect, type RemoteSessions } from '../../src/client/index.js';
import type { ErrorCode } from '../../src/core/error-codes.js';
import { isTensorcastError } from '../../src/core/errors.js';
import { SESSIONS_DISABLED_MESSAGE } from '../../src/protocol/http/sessions.js';
import { startDaemon } from '../harness/daemon.js';
import { BPT, coldDirUrl, GEOMETRY, kvBytes } from '../helpers/session-fixtures.js';

const HOT_BUDGET = 256 << 10;

async function sessionsOf(t: TestContext, extraArgs: readonly string[]): Promise<RemoteSessions> {
  const daemon = await startDaemon(t, { extraArgs });
  const client = await connect({ url: daemon.controlUrl, token: daemon.token });
  t.after(() => client.close());
  return client.sessions({ timeoutMs: 120_000 });
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, what: string, reason?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isTensorcastError(e, code), `${what}: expected ${code}, got ${String(e)}`);
    if (reason !== undefined) assert.equal(e.details['reason'], reason, `${what}: reason`);
    return true;
  });
}

test('sessions sdk: create, list, stat, append, read, truncate, swaps, stats, gc and close against a real daemon', async (t) => {
  const s = await sessionsOf(t, ['--sessions-cold', coldDirUrl(t), '--sessions-hot-budget', String(HOT_BUDGET)]);
  const a = await s.create({ sessionId: 'sdk-a', geometry: GEOMETRY });
  assert.equal(a.tokens, 0);
  assert.match(a.geometryHash, /^[0-9a-f]{32}$/);
  await s.create({ sessionId: 'sdk-b', geometry: GEOMETRY });
  await s.create({ sessionId: 'sdk-c', geometry: GEOMETRY });
  const anon = await s.create({ geometry: GEOMETRY });
  const ids = (await s.list()).map((x) => x.sessionId);
  assert.deepEqual(ids, [...ids].sort());
  for (const id of ['sdk-a', 'sdk-b', 'sdk-c', anon.sessionId]) assert.ok(ids.includes(id), id);
  assert.equal((await s.list({ limit: 2 })).length, 2);
  assert.ok(!(await s.list({ after: 'sdk-a' })).some((x) => x.sessionId <= 'sdk-a'));

  // Appends: one token, a few, and one beyond the eager MiB (several DATA frames within the daemon's credit).
  const parts = [kvBytes(1, 1), kvBytes(99, 2), kvBytes(((2 << 20) + 5 * BPT) / BPT, 3)];
  let tokens = 0;
  let version = a.version;
  for (const kv of parts) {
    const r = await s.append('sdk-a', tokens, kv, { expectHash: a.geometryHash });
    assert.deepEqual(
      { sessionId: r.sessionId, tokenOffset: r.tokenOffset, tokenLength: r.tokenLength, tokens: r.tokens },
      { sessionId: 'sdk-a', tokenOffset: tokens, tokenLength: kv.length / BPT, tokens: tokens + kv.length / BPT },
    );
    assert.ok(r.version > version, 'the version grows');
    version = r.version;
    tokens = r.tokens;
  }
  const all = Buffer.concat(parts);
  const stat = await s.stat('sdk-a');
  assert.equal(stat.tokens, tokens);
  assert.equal(stat.bytes, all.length);
  assert.equal(stat.entries, 3);

  // Reads of any range: whole (larger than the hot budget: served from cold), across entries, one token.
  for (const [from, to] of [
    [0, tokens],
    [0, 1],
    [1, 100],
    [50, 150],
    [tokens - 1, tokens],
  ] as const) {
    const into = Buffer.alloc((to - from) * BPT);
    const r = await s.read('sdk-a', { tokenStart: from, tokenEnd: to }, { into, expectHash: a.geometryHash });
    assert.equal(r.bytes, into.length);
    assert.ok(into.equals(all.subarray(from * BPT, to * BPT)), `tokens [${from}, ${to})`);
  }

  // Truncate (the user edited the conversation), then continue from the cut.
  const cut = await s.truncate('sdk-a', 50);
  assert.equal(cut.tokens, 50);
  const next = kvBytes(10, 4);
  assert.equal((await s.append('sdk-a', 50, next)).tokens, 60);
  const model = Buffer.concat([all.subarray(0, 50 * BPT), next]);
  const back = Buffer.alloc(model.length);
  await s.read('sdk-a', { tokenStart: 0, tokenEnd: 60 }, { into: back });
  assert.ok(back.equals(model), 'prefix + the new tokens');

  // Swaps: out (a read then misses and brings it back), in.
  await s.swapOut('sdk-a');
  assert.equal((await s.stat('sdk-a')).residency, 'cold');
  const cold = Buffer.alloc(model.length);
  const miss = await s.read('sdk-a', { tokenStart: 0, tokenEnd: 60 }, { into: cold });
  assert.equal(miss.hit, false);
  assert.ok(cold.equals(model));
  await s.swapOut('sdk-a');
  const swapped = await s.swapIn('sdk-a');
  assert.equal(swapped.sessionId, 'sdk-a');
  assert.equal((await s.stat('sdk-a')).residency, 'hot');
  const hot = Buffer.alloc(model.length);
  assert.equal((await s.read('sdk-a', { tokenStart: 0, tokenEnd: 60 }, { into: hot })).hit, true);
  assert.ok(hot.equals(model));

  const stats = await s.stats();
  assert.equal(stats.hotBudgetBytes, HOT_BUDGET);
  assert.ok(stats.hotBytes <= HOT_BUDGET);
  assert.ok(stats.hits > 0 && stats.misses > 0, JSON.stringify(stats));

  // Close frees every tier; gc finds nothing of ours to collect but answers its counts.
  await rejectsWith(s.close('sdk-a', { expectHash: '0'.repeat(32) }), 'TC_ERR_INCOMPATIBLE', 'close, wrong hash');
  await s.close('sdk-a', { expectHash: a.geometryHash });
  await rejectsWith(s.stat('sdk-a'), 'TC_ERR_NOT_FOUND', 'stat after close');
  await rejectsWith(s.read('sdk-a', { tokenStart: 0, tokenEnd: 1 }, { into: Buffer.alloc(BPT) }), 'TC_ERR_NOT_FOUND', 'read after close');
  const gc = await s.gc();
  assert.ok(Number.isSafeInteger(gc.scanned) && Number.isSafeInteger(gc.deleted));
  assert.ok(!(await s.list()).some((x) => x.sessionId === 'sdk-a'));
});

test('sessions sdk: bad input is a clear coded error that changes nothing; the connections keep working', async (t) => {
  const s = await sessionsOf(t, ['--sessions-cold', coldDirUrl(t), '--sessions-hot-budget', String(HOT_BUDGET)]);
  const b = await s.create({ sessionId: 'bad', geometry: GEOMETRY });
  await s.append('bad', 0, kvBytes(4, 1));
  const before = await s.stat('bad');
  const other = '0'.repeat(32);
  await rejectsWith(s.append('bad', 6, kvBytes(1, 2)), 'TC_ERR_INVALID_ARGUMENT', 'gap', 'gap');
  await rejectsWith(s.append('bad', 3, kvBytes(1, 2)), 'TC_ERR_INVALID_ARGUMENT', 'overlap', 'overlap');
  await rejectsWith(s.append('bad', 4, Buffer.alloc(BPT + 1)), 'TC_ERR_INVALID_ARGUMENT', 'partial token', 'partial_token');
  await rejectsWith(s.append('bad', 4, kvBytes(1, 2), { expectHash: other }), 'TC_ERR_INCOMPATIBLE', 'append, wrong hash');
  await rejectsWith(
    s.read('bad', { tokenStart: 0, tokenEnd: 1 }, { into: Buffer.alloc(BPT), expectHash: other }),
    'TC_ERR_INCOMPATIBLE',
    'read, wrong hash',
  );
  await rejectsWith(
    s.read('bad', { tokenStart: 0, tokenEnd: 5 }, { into: Buffer.alloc(5 * BPT) }),
    'TC_ERR_SOURCE_RANGE',
    'beyond the end',
  );
  await rejectsWith(s.read('bad', { tokenStart: 3, tokenEnd: 2 }, { into: Buffer.alloc(0) }), 'TC_ERR_SOURCE_RANGE', 'reversed');
  await rejectsWith(s.read('bad', { tokenStart: 0, tokenEnd: 4 }, { into: Buffer.alloc(4 * BPT - 1) }), 'TC_ERR_DESTINATION_SIZE', 'into');
  await rejectsWith(s.append('nobody', 0, kvBytes(1, 2)), 'TC_ERR_NOT_FOUND', 'append, unknown');
  await rejectsWith(s.read('nobody', { tokenStart: 0, tokenEnd: 1 }, { into: Buffer.alloc(BPT) }), 'TC_ERR_NOT_FOUND', 'read, unknown');
  await rejectsWith(s.truncate('bad', 9), 'TC_ERR_SOURCE_RANGE', 'truncate beyond the end');
  await rejectsWith(s.append('no such id!', 0, kvBytes(1, 2)), 'TC_ERR_INVALID_ARGUMENT', 'bad id');
  await rejectsWith(s.append('bad', -1, kvBytes(1, 2)), 'TC_ERR_INVALID_ARGUMENT', 'negative offset');
  await rejectsWith(s.create({ sessionId: 'bad', geometry: GEOMETRY }), 'TC_ERR_CONFLICT', 'duplicate id');
  await rejectsWith(s.create({ geometry: { ...GEOMETRY, layers: 0 } }), 'TC_ERR_INVALID_ARGUMENT', 'bad geometry');
  const after = await s.stat('bad');
  assert.equal(after.tokens, before.tokens);
  assert.equal(after.version, before.version);
  const ok = await s.append('bad', 4, kvBytes(2, 3), { expectHash: b.geometryHash });
  assert.equal(ok.tokens, 6);
  const into = Buffer.alloc(6 * BPT);
  await s.read('bad', { tokenStart: 0, tokenEnd: 6 }, { into });
  assert.ok(into.equals(Buffer.concat([kvBytes(4, 1), kvBytes(2, 3)])));
});

test('sessions sdk: on a daemon without --sessions-cold, appends and reads fail with TC_ERR_NOT_FOUND', async (t) => {
  const s = await sessionsOf(t, []);
  const calls: (() => Promise<unknown>)[] = [
    () => s.append('x', 0, kvBytes(1, 1)),
    () => s.append('x', 0, kvBytes((2 << 20) / BPT, 1)),
    () => s.read('x', { tokenStart: 0, tokenEnd: 1 }, { into: Buffer.alloc(BPT) }),
    () => s.stat('x'),
  ];
  for (const call of calls) {
    await assert.rejects(call(), (e: unknown) => {
      assert.ok(isTensorcastError(e, 'TC_ERR_NOT_FOUND') && e.message.includes(SESSIONS_DISABLED_MESSAGE), String(e));
      assert.equal(e.details['reason'], 'sessions_disabled');
      return true;
    });
  }
});

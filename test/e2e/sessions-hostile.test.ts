// The daemon's session surface against hostile or careless users: appends racing a truncate, a close and a
// swap-out of the same session; a close while a read streams; a client killed (SIGKILL) mid-append; many
// creates with bad ids and geometries over HTTP; a Redis metadata store going away and coming back.
// Every failure must be a coded error, and what is recorded must be exactly what was acknowledged.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect, type RemoteSessions } from '../../src/client/index.js';
import { isTensorcastError } from '../../src/core/errors.js';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';
import { privateRedis } from '../harness/services.js';
import { ObjectWire } from '../helpers/object-wire.js';
import { BPT, GEOMETRY, kvBytes } from '../helpers/session-fixtures.js';
import { tempDir } from '../helpers/tmp.js';

const BUDGET = 1024 * BPT;

async function daemonWithSessions(
  t: Parameters<typeof startDaemon>[0],
  extra: readonly string[] = [],
): Promise<{ d: TestDaemon; s: RemoteSessions; cold: string }> {
  const dir = tempDir(t, 'tc-sessions-hostile-');
  const cold = join(dir, 'cold');
  mkdirSync(cold);
  const d = await startDaemon(t, {
    extraArgs: [
      '--sessions-cold',
      pathToFileURL(cold).href,
      '--sessions-meta',
      `sqlite://${join(dir, 's.db')}`,
      '--sessions-hot-budget',
      String(BUDGET),
      ...extra,
    ],
  });
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  return { d, s: client.sessions({ timeoutMs: 30_000 }), cold };
}

/** A coded error or a success: anything else (an uncoded error) fails the test. */
async function settle<T>(p: Promise<T>, what: string): Promise<{ ok: true; value: T } | { ok: false; code: string }> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    assert.ok(isTensorcastError(e), `${what}: an uncoded error ${String(e)}`);
    return { ok: false, code: e.code };
  }
}

/** Objects under the cold tier's sessions/<id>/. */
function coldObjects(cold: string, id: string): string[] {
  try {
    return readdirSync(join(cold, 'sessions', id));
  } catch {
    return [];
  }
}

test('sessions hostile: appends racing truncates, swap-outs and a close of one session: coded errors only, the record is what was acknowledged', async (t) => {
  const { s, cold } = await daemonWithSessions(t);
  for (let round = 0; round < 6; round++) {
    const id = `race-${round}`;
    await s.create({ sessionId: id, geometry: GEOMETRY });
    await s.append(id, 0, kvBytes(64, round));
    // Appends at the end as the writer knows it, racing truncates and swap-outs.
    const ops: Promise<unknown>[] = [];
    for (let k = 0; k < 8; k++) {
      ops.push(settle(s.append(id, 64 + k * 8, kvBytes(8, round * 100 + k)), `append ${k}`));
      if (k % 3 === 0) ops.push(settle(s.truncate(id, 32 + k), `truncate ${k}`));
      if (k % 2 === 1) ops.push(settle(s.swapOut(id), `swap-out ${k}`));
    }
    await Promise.all(ops);
    // Whatever happened, the session reads whole and consistently with its record.
    const st = await s.stat(id);
    const into = Buffer.alloc(st.tokens * BPT);
    if (st.tokens > 0) await s.read(id, { tokenStart: 0, tokenEnd: st.tokens }, { into });
    // The first 32 tokens are never cut by the truncates above and never rewritten.
    assert.ok(st.tokens >= 32, `round ${round}: ${st.tokens} tokens`);
    assert.ok(into.subarray(0, 32 * BPT).equals(kvBytes(64, round).subarray(0, 32 * BPT)), `round ${round}: the prefix`);
    // Still writable at its end.
    await s.append(id, st.tokens, kvBytes(4, 7));
    // Then a close racing appends: afterwards the session is gone and leaves no objects once gc ran.
    const end = st.tokens + 4;
    const closing = [
      settle(s.append(id, end, kvBytes(4, 8)), 'append before close'),
      settle(s.close(id), 'close'),
      settle(s.append(id, end + 4, kvBytes(4, 9)), 'append after close'),
    ];
    const [, closed] = await Promise.all(closing);
    assert.equal(closed!.ok, true, `round ${round}: close ${JSON.stringify(closed)}`);
    const after = await settle(s.stat(id), 'stat after close');
    assert.deepEqual(after, { ok: false, code: 'TC_ERR_NOT_FOUND' }, `round ${round}: the session is gone`);
  }
  await s.gc();
  const stats = await s.stats();
  assert.ok(stats.hotBytes <= BUDGET);
  for (let round = 0; round < 6; round++) assert.deepEqual(coldObjects(cold, `race-${round}`), [], `round ${round}: objects left`);
});

test('sessions hostile: a close while a read streams: the read completes or fails coded, the room comes back, the session is gone', async (t) => {
  const { s } = await daemonWithSessions(t);
  const tokens = 4096; // 128 KiB: larger than the hot budget, served from cold
  const kv = kvBytes(tokens, 5);
  for (let round = 0; round < 4; round++) {
    const id = `cr-${round}`;
    await s.create({ sessionId: id, geometry: GEOMETRY });
    for (let at = 0; at < tokens; at += 512) await s.append(id, at, kv.subarray(at * BPT, (at + 512) * BPT));
    const reads = Array.from({ length: 4 }, async () => {
      const into = Buffer.alloc(tokens * BPT);
      const r = await settle(s.read(id, { tokenStart: 0, tokenEnd: tokens }, { into }), 'read');
      if (r.ok) assert.ok(into.equals(kv), `round ${round}: a read that succeeded has the bytes`);
      else assert.ok(['TC_ERR_NOT_FOUND', 'TC_ERR_CONFLICT'].includes(r.code), `round ${round}: read ${r.code}`);
    });
    const closed = await settle(s.close(id), 'close');
    await Promise.all(reads);
    assert.ok(closed.ok || closed.code === 'TC_ERR_CONFLICT', `round ${round}: close ${JSON.stringify(closed)}`);
    if (!closed.ok) await s.close(id);
    assert.deepEqual(await settle(s.stat(id), 'stat'), { ok: false, code: 'TC_ERR_NOT_FOUND' });
  }
  const stats = await s.stats();
  assert.equal(stats.hotBytes, 0, `no room held: ${JSON.stringify(stats)}`);
});

test('sessions hostile: a client killed (SIGKILL) mid-append records nothing; the session is writable again within the lease TTL', async (t) => {
  const { d, s } = await daemonWithSessions(t, ['--sessions-lease-ttl', '2s']);
  await s.create({ sessionId: 'killed', geometry: GEOMETRY });
  await s.append('killed', 0, kvBytes(16, 1));
  const clientModule = pathToFileURL(join(fileURLToPath(new URL('.', import.meta.url)), '../../src/client/index.js')).href;
  // The child appends 64 MiB in one SAPPEND and says when it starts; it is killed while the bytes flow.
  const script = `
    const { connect } = await import(${JSON.stringify(clientModule)});
    const c = await connect({ url: ${JSON.stringify(d.controlUrl)}, token: ${JSON.stringify(d.token)} });
    const kv = Buffer.alloc(${(64 << 20) / BPT} * ${BPT}, 7);
    process.stdout.write('go\\n');
    await c.sessions().append('killed', 16, kv);
    process.stdout.write('done\\n');
  `;
  let checked = 0;
  for (let round = 0; round < 3; round++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('go')) resolve();
      });
      child.once('exit', () => reject(new Error(`child exited before appending: ${out}`)));
    });
    await new Promise((r) => setTimeout(r, 20 + round * 30));
    child.kill('SIGKILL');
    await exited;
    if (out.includes('done')) continue; // the append finished before the kill: nothing to check this round
    checked++;
    // Nothing half recorded.
    const st = await s.stat('killed');
    assert.equal(st.tokens, 16, `round ${round}: ${JSON.stringify(st)}`);
    // Writable again (at once, or after the lease TTL at the latest).
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await settle(s.append('killed', 16, kvBytes(4, round)), 'append after the kill');
      if (r.ok) break;
      assert.ok(['TC_ERR_CONFLICT', 'TC_ERR_TIMEOUT'].includes(r.code) && Date.now() < deadline, `round ${round}: ${r.code}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    await s.truncate('killed', 16);
    const into = Buffer.alloc(16 * BPT);
    await s.read('killed', { tokenStart: 0, tokenEnd: 16 }, { into });
    assert.ok(into.equals(kvBytes(16, 1)));
  }
  assert.ok(checked > 0, 'no kill landed mid-append');
  t.diagnostic(`${checked} of 3 kills landed mid-append`);
  assert.ok((await s.stats()).hotBytes <= BUDGET);
});

test('sessions hostile: many creates with bad ids and geometries over HTTP are coded 400s and leave nothing', async (t) => {
  const { d, s } = await daemonWithSessions(t);
  const post = (body: unknown): Promise<Response> =>
    fetch(`${d.controlUrl}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const badIds: unknown[] = ['', 'a/b', 'x'.repeat(129), 'a b', 'é', 12, null, {}, [], 'a\u0000b', '%2E', '../../etc'];
  const badGeometries: unknown[] = [
    null,
    {},
    { ...GEOMETRY, layers: 0 },
    { ...GEOMETRY, layers: -1 },
    { ...GEOMETRY, layers: 1.5 },
    { ...GEOMETRY, kvHeads: 2 ** 53 },
    { ...GEOMETRY, headDim: 2 ** 31, layers: 2 ** 31 },
    { ...GEOMETRY, dtype: 'F17' },
    { ...GEOMETRY, tokensPerPage: 0 },
    { ...GEOMETRY, kvFactor: 3 },
    { ...GEOMETRY, kvFactor: 0 },
    { ...GEOMETRY, modelId: '' },
    { ...GEOMETRY, modelId: 'x'.repeat(100_000) },
    { ...GEOMETRY, extra: 1 },
    'geometry',
  ];
  const answers: [string, number, string][] = [];
  const bodies = [
    ...badIds.map((sessionId) => ({ sessionId, geometry: GEOMETRY })),
    ...badGeometries.map((geometry, i) => ({ sessionId: `g-${i}`, geometry })),
  ];
  for (let rep = 0; rep < 4; rep++) {
    await Promise.all(
      bodies.map(async (b) => {
        const r = await post(b);
        const j = (await r.json()) as { error?: { code?: string } };
        answers.push([JSON.stringify(b).slice(0, 80), r.status, j.error?.code ?? '']);
      }),
    );
  }
  const wrong = answers.filter(([, status, code]) => status !== 400 || code !== 'TC_ERR_INVALID_ARGUMENT');
  assert.deepEqual(wrong, [], 'every bad create is a 400 TC_ERR_INVALID_ARGUMENT');
  assert.deepEqual(await s.list(), []);
});

test('sessions hostile: a Redis metadata store going away: coded 503s (TC_ERR_BACKEND), then the daemon recovers', async (t) => {
  const redis = await privateRedis(t, { persistent: true });
  if (redis === undefined) return;
  const dir = tempDir(t, 'tc-sessions-redis-');
  const d = await startDaemon(t, {
    extraArgs: [
      '--sessions-cold',
      pathToFileURL(dir).href,
      '--sessions-meta',
      `${redis.url}?prefix=hostile:`,
      '--sessions-hot-budget',
      String(BUDGET),
    ],
  });
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  const s = client.sessions({ timeoutMs: 20_000 });
  await s.create({ sessionId: 'r-1', geometry: GEOMETRY });
  await s.append('r-1', 0, kvBytes(16, 1));
  await redis.stop();
  const headers = { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' };
  const during: [string, number, string][] = [];
  for (const [method, path, body] of [
    ['GET', '/v1/sessions', undefined],
    ['GET', '/v1/sessions/r-1', undefined],
    ['POST', '/v1/sessions', { sessionId: 'r-2', geometry: GEOMETRY }],
    ['POST', '/v1/sessions/r-1/truncate', { tokenEnd: 8 }],
    ['DELETE', '/v1/sessions/r-1', undefined],
  ] as const) {
    const r = await fetch(`${d.controlUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const j = (await r.json()) as { error?: { code?: string } };
    during.push([`${method} ${path}`, r.status, j.error?.code ?? '']);
  }
  assert.deepEqual(
    during.filter(([, st, code]) => st !== 503 || code !== 'TC_ERR_BACKEND'),
    [],
    `every route a coded 503 while Redis is down: ${JSON.stringify(during)}`,
  );
  const app = await settle(s.append('r-1', 16, kvBytes(4, 2)), 'append while Redis is down');
  assert.deepEqual(app, { ok: false, code: 'TC_ERR_BACKEND' });
  const rd = await settle(s.read('r-1', { tokenStart: 0, tokenEnd: 16 }, { into: Buffer.alloc(16 * BPT) }), 'read while Redis is down');
  assert.deepEqual(rd, { ok: false, code: 'TC_ERR_BACKEND' });
  const health = await fetch(`${d.controlUrl}/metrics`, { headers });
  assert.equal(health.status, 200, 'the daemon still answers /metrics');
  await redis.start();
  // Recovery: the session as acknowledged, writable and readable again.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = await settle(s.append('r-1', 16, kvBytes(4, 3)), 'append after Redis is back');
    if (r.ok) break;
    assert.ok(Date.now() < deadline, `not recovered: ${r.code}`);
    await new Promise((res) => setTimeout(res, 250));
  }
  const into = Buffer.alloc(20 * BPT);
  await s.read('r-1', { tokenStart: 0, tokenEnd: 20 }, { into });
  assert.ok(into.equals(Buffer.concat([kvBytes(16, 1), kvBytes(4, 3)])));
  await s.create({ sessionId: 'r-2', geometry: GEOMETRY });
  assert.deepEqual(
    (await s.list()).map((x) => [x.sessionId, x.tokens]),
    [
      ['r-1', 20],
      ['r-2', 0],
    ],
  );
});

test('sessions hostile: SAPPEND and SREAD with lies (partial tokens, absurd sizes, wrong expectBytes): coded errors, the daemon lives, nothing held', async (t) => {
  const { d, s } = await daemonWithSessions(t);
  await s.create({ sessionId: 'w', geometry: GEOMETRY });
  await s.append('w', 0, kvBytes(16, 1));
  const wire = await ObjectWire.open(d.dataAddress, d.token);
  t.after(() => wire.close());
  const code = (r: Awaited<ReturnType<ObjectWire['sread']>>): string => (r.ok ? 'ok' : r.error.code);
  assert.equal(
    code(await wire.sappend({ sessionId: 'w', tokenOffset: 16 }, Buffer.alloc(BPT + 1))),
    'TC_ERR_INVALID_ARGUMENT',
    'partial token',
  );
  assert.equal(
    code(await wire.sappend({ sessionId: 'w', tokenOffset: 16, size: 0 }, Buffer.alloc(0))),
    'TC_ERR_INVALID_ARGUMENT',
    'empty append',
  );
  // Whole tokens, but more than a buffer can hold: refused as bad input, and the session is not left held (a
  // failed allocation once kept its lock and lease: the next append of the session waited for the lock timeout).
  for (const size of [BPT * 2 ** 30, BPT * 2 ** 40]) {
    const r = await Promise.race([
      wire.sappend({ sessionId: 'w', tokenOffset: 16, size }, Buffer.alloc(0)),
      new Promise<'stuck'>((res) => setTimeout(() => res('stuck'), 10_000)),
    ]);
    assert.notEqual(r, 'stuck', `an append of ${size} bytes got no answer within 10 s`);
    assert.equal(r !== 'stuck' && code(r), 'TC_ERR_INVALID_ARGUMENT', `an append of ${size} bytes`);
  }
  assert.equal(
    code(await wire.sread({ sessionId: 'w', tokenStart: 0, tokenEnd: 16, expectBytes: 16 * BPT - 1 })),
    'TC_ERR_DESTINATION_SIZE',
    'expectBytes',
  );
  assert.equal(
    code(await wire.sread({ sessionId: 'w', tokenStart: 0, tokenEnd: 17, expectBytes: 17 * BPT })),
    'TC_ERR_SOURCE_RANGE',
    'past the end',
  );
  assert.equal(
    code(await wire.sread({ sessionId: 'w', tokenStart: 8, tokenEnd: 4, expectBytes: 0 })),
    'TC_ERR_SOURCE_RANGE',
    'reversed range (docs/protocol.md)',
  );
  // The connection still works, the daemon too, and nothing is held.
  const ok = await wire.sread({ sessionId: 'w', tokenStart: 0, tokenEnd: 16, expectBytes: 16 * BPT });
  assert.ok(ok.ok && ok.data!.equals(kvBytes(16, 1)));
  await s.append('w', 16, kvBytes(4, 2));
  assert.equal((await s.stat('w')).tokens, 20);
  assert.ok((await s.stats()).hotBytes <= BUDGET);
});

test('sessions hostile: reads racing truncates and swap-outs of the same session: the right bytes or TC_ERR_SOURCE_RANGE, never others', async (t) => {
  const { s } = await daemonWithSessions(t);
  for (let round = 0; round < 5; round++) {
    const id = `rt-${round}`;
    const kv = kvBytes(96, 40 + round);
    await s.create({ sessionId: id, geometry: GEOMETRY });
    for (let at = 0; at < 96; at += 16) await s.append(id, at, kv.subarray(at * BPT, (at + 16) * BPT));
    const ops: Promise<void>[] = [];
    for (let k = 0; k < 16; k++) {
      const [a, b] = [k * 3, 50 + k * 3];
      ops.push(
        (async () => {
          const into = Buffer.alloc((b - a) * BPT);
          const r = await settle(s.read(id, { tokenStart: a, tokenEnd: b }, { into }), `read ${a}..${b}`);
          if (r.ok) assert.ok(into.equals(kv.subarray(a * BPT, b * BPT)), `round ${round}: read ${a}..${b} bytes`);
          else assert.equal(r.code, 'TC_ERR_SOURCE_RANGE', `round ${round}: read ${a}..${b}`);
        })(),
      );
      if (k === 4) ops.push(settle(s.truncate(id, 70), 'truncate').then((r) => assert.ok(r.ok, JSON.stringify(r))));
      if (k === 8) ops.push(settle(s.swapOut(id), 'swap-out').then(() => undefined));
      if (k === 10) ops.push(settle(s.truncate(id, 55), 'truncate').then((r) => assert.ok(r.ok, JSON.stringify(r))));
    }
    await Promise.all(ops);
    const into = Buffer.alloc(55 * BPT);
    await s.read(id, { tokenStart: 0, tokenEnd: 55 }, { into });
    assert.ok(into.equals(kv.subarray(0, 55 * BPT)), `round ${round}: after the truncates`);
  }
  assert.ok((await s.stats()).hotBytes <= BUDGET);
});

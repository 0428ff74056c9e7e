// Two cache instances on one shared metadata store (Redis, then PostgreSQL) and one cold tier (file://, then
// a Redis connector): a session created and appended on A is continued on B and read back on A; racing
// appends from A and B to one session: each is either applied or refused (TC_ERR_CONFLICT, or an overlap
// when the other won the offset), and the session ends holding exactly the applied ones, in order.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createConnector } from '../../src/connectors/create-connector.js';
import { isTensorcastError } from '../../src/core/errors.js';
import { coldKey, SESSIONS_PREFIX } from '../../src/sessions/cold-objects.js';
import { createSessionCache, type SessionCache } from '../../src/sessions/session-cache.js';
import { postgresCatalogUrl, redisCatalogUrl, redisConnectorUrl } from '../harness/services.js';
import { BPT, GEOMETRY, coldDirUrl, kvBytes } from '../helpers/session-fixtures.js';

async function pair(t: TestContext, meta: string, cold: string): Promise<[SessionCache, SessionCache]> {
  const open = async (owner: string): Promise<SessionCache> => {
    const cache = await createSessionCache({ hot: { budgetBytes: 256 * BPT }, cold, meta, owner });
    t.after(() => cache.shutdown());
    return cache;
  };
  return [await open('instance-a'), await open('instance-b')];
}

async function readAll(cache: SessionCache, id: string): Promise<Buffer> {
  const { tokens } = await cache.stat(id);
  const into = Buffer.alloc(tokens * BPT);
  if (tokens > 0) await cache.read(id, { tokenStart: 0, tokenEnd: tokens }, { into });
  return into;
}

async function stateless(t: TestContext, meta: string, cold: string): Promise<void> {
  const [a, b] = await pair(t, meta, cold);
  await a.create({ sessionId: 'conv', geometry: GEOMETRY });
  await a.append('conv', 0, kvBytes(10, 1));
  await b.append('conv', 10, kvBytes(5, 2));
  assert.deepEqual(await readAll(a, 'conv'), Buffer.concat([kvBytes(10, 1), kvBytes(5, 2)]));
  await b.truncate('conv', 12);
  await a.append('conv', 12, kvBytes(3, 3));
  const want = Buffer.concat([kvBytes(10, 1), kvBytes(2, 2), kvBytes(3, 3)]);
  assert.deepEqual(await readAll(b, 'conv'), want);
  assert.deepEqual(await readAll(a, 'conv'), want);

  // Racing appends: each side tries the session's end as it last saw it.
  await a.create({ sessionId: 'race', geometry: GEOMETRY });
  const applied: { offset: number; bytes: Buffer }[] = [];
  let refused = 0;
  const writer = async (cache: SessionCache, seed: number): Promise<void> => {
    for (let i = 0; i < 40; i++) {
      const { tokens } = await cache.stat('race');
      const kv = kvBytes(1 + ((i + seed) % 3), seed * 1000 + i);
      try {
        await cache.append('race', tokens, kv);
        applied.push({ offset: tokens, bytes: kv });
      } catch (error) {
        const lost =
          isTensorcastError(error, 'TC_ERR_CONFLICT') ||
          (isTensorcastError(error, 'TC_ERR_INVALID_ARGUMENT') && error.details.reason === 'overlap');
        if (!lost) throw error;
        refused++;
      }
    }
  };
  await Promise.all([writer(a, 1), writer(b, 2)]);
  applied.sort((x, y) => x.offset - y.offset);
  let end = 0;
  for (const x of applied) {
    assert.equal(x.offset, end, 'applied appends are contiguous');
    end += x.bytes.length / BPT;
  }
  const want2 = Buffer.concat(applied.map((x) => x.bytes));
  assert.deepEqual(await readAll(a, 'race'), want2);
  assert.deepEqual(await readAll(b, 'race'), want2);
  t.diagnostic(
    `racing appends: ${applied.length} applied, ${refused} refused; lease conflicts a ${(await a.stats()).leaseConflicts} b ${(await b.stats()).leaseConflicts}`,
  );

  // A writer holding the session: the other is refused at once, and continues once it is released.
  const held = await a.prepareAppend('conv', 15, BPT);
  await assert.rejects(b.append('conv', 15, kvBytes(1, 9)), { code: 'TC_ERR_CONFLICT' });
  held.dest.set(kvBytes(1, 8));
  await held.commit();
  await b.append('conv', 16, kvBytes(1, 9));
  assert.equal((await a.stat('conv')).tokens, 17);
  await b.close('conv');
  await assert.rejects(a.stat('conv'), { code: 'TC_ERR_NOT_FOUND' });

  // gc on a shared store: an unreferenced object younger than the grace period may be an append in flight
  // on another instance (spared); once older, it is an orphan.
  const c = await createConnector(cold);
  t.after(() => c.close());
  const orphan = coldKey('race', 999, 1);
  await c.write(orphan, kvBytes(1, 1));
  assert.equal((await a.gc()).deleted, 0);
  const late = await createSessionCache({ hot: { budgetBytes: 0 }, cold, meta, gcGraceMs: 0 });
  t.after(() => late.shutdown());
  const r = await late.gc();
  assert.equal(r.deleted, 1);
  assert.ok(!(await c.list(SESSIONS_PREFIX)).some((o) => o.key === orphan));
  assert.deepEqual(await readAll(late, 'race'), want2, 'referenced objects stay');
}

test('session cache shared: two instances on Redis metadata, file:// cold', async (t) => {
  const meta = await redisCatalogUrl(t);
  if (meta === undefined) return;
  await stateless(t, meta, coldDirUrl(t));
});

test('session cache shared: two instances on PostgreSQL metadata, redis:// cold', async (t) => {
  const meta = await postgresCatalogUrl(t);
  if (meta === undefined) return;
  const cold = await redisConnectorUrl(t);
  if (cold === undefined) return;
  await stateless(t, meta, cold);
});

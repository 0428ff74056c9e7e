import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplicaCache, type Replica } from './replica-cache.js';

const replica = (key: string, bytes: number) => () =>
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

test('replica cache: LRU eviction of idle replicas only, budget never exceeded, builds joined', async () => {
  const evicted: string[] = [];
  const cache = new ReplicaCache(100, (r) => evicted.push(r.key));
  let builds = 0;
  const counted = (key: string, bytes: number) => () => {
    builds++;
    return replica(key, bytes)();
  };
  const [a1, a2] = await Promise.all([cache.acquire('a', 40, counted('a', 40)), cache.acquire('a', 40, counted('a', 40))]);
  assert.equal(a1, a2);
  assert.equal(builds, 1);
  assert.equal(a1.refs, 2);
  const b = await cache.acquire('b', 40, replica('b', 40));
  cache.release(b);
  await new Promise((r) => setTimeout(r, 2));
  const c = await cache.acquire('c', 20, replica('c', 20));
  cache.release(c);
  // 'd' needs 40: 'a' is being read, so the idle LRU ('b') goes.
  const d = await cache.acquire('d', 40, replica('d', 40));
  assert.deepEqual(evicted, ['b']);
  assert.ok(cache.usedBytes <= 100);
  // Nothing idle can make room for 50 more: a budget error, nothing evicted that is read.
  await assert.rejects(cache.acquire('e', 50, replica('e', 50)), { code: 'TC_ERR_BUDGET' });
  assert.equal(cache.canFit(20), true);
  assert.equal(cache.canFit(41), false);
  cache.release(a1);
  cache.release(a2);
  cache.release(d);
  assert.throws(() => cache.release(d), { code: 'TC_ERR_INTERNAL' });
  const e = await cache.acquire('e', 90, replica('e', 90));
  assert.deepEqual(evicted.sort(), ['a', 'b', 'c', 'd']);
  assert.equal(cache.usedBytes, 90);
  cache.release(e);
  assert.deepEqual(cache.bytesByTier(), { memory: 90, shm: 0 });
  assert.equal((cache.get('e') as Replica).refs, 1);
});

test('replica cache: acquireIfFits resolves undefined (does not throw) when a replica cannot fit; joining a build ends at the deadline', async () => {
  const cache = new ReplicaCache(100, () => undefined);
  assert.equal(await cache.acquireIfFits('big', 150, replica('big', 150)), undefined);
  const held = await cache.acquire('a', 80, replica('a', 80));
  assert.equal(await cache.acquireIfFits('b', 40, replica('b', 40)), undefined, 'the budget is held by a replica being read');
  cache.release(held);
  const b = await cache.acquireIfFits('b', 40, replica('b', 40));
  assert.equal(b?.key, 'b', 'room made by evicting the idle replica');
  let finish: () => void = () => undefined;
  const slow = () =>
    new Promise<Awaited<ReturnType<ReturnType<typeof replica>>>>((resolve) => (finish = () => void replica('s', 10)().then(resolve)));
  const builder = cache.acquire('s', 10, slow);
  await assert.rejects(cache.acquire('s', 10, slow, Date.now() + 20), { code: 'TC_ERR_TIMEOUT' });
  finish();
  assert.equal((await builder).refs, 1);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StagingPool } from './staging-pool.js';

test('staging pool: never holds more than its bound; waiters served in order; a wait ends at its deadline', async () => {
  const pool = new StagingPool({ boundBytes: 3000, stageBytes: 1000, idleMs: 50 });
  const held = [pool.tryAcquire(), pool.tryAcquire(), pool.tryAcquire()];
  assert.ok(held.every((b) => b?.length === 1000));
  assert.equal(pool.tryAcquire(), undefined, 'the bound is reached');
  assert.equal(pool.info().inUseBytes, 3000);
  const order: number[] = [];
  const w1 = pool.acquire(Date.now() + 5000).then((b) => (order.push(1), b));
  const w2 = pool.acquire(Date.now() + 5000).then((b) => (order.push(2), b));
  const late = pool.acquire(Date.now() + 20, 'test wait');
  await assert.rejects(late, { code: 'TC_ERR_TIMEOUT' });
  assert.equal(pool.info().waiting, 2);
  pool.release(held[0]!);
  pool.release(held[1]!);
  const [b1, b2] = await Promise.all([w1, w2]);
  assert.deepEqual(order, [1, 2]);
  assert.equal(pool.info().inUseBytes, 3000, 'handed over, never above the bound');
  for (const b of [b1, b2, held[2]!]) pool.release(b);
  assert.equal(pool.info().idleBytes, 3000);
  assert.ok(pool.tryAcquire() !== undefined, 'an idle stage is reused');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(pool.info().idleBytes, 0, 'idle stages are freed after idleMs');
  pool.close();
  await assert.rejects(pool.acquire(Date.now() + 1000), { code: 'TC_ERR_SHUTTING_DOWN' });
});

test('staging pool: a bound smaller than a stage still yields one (smaller) stage', () => {
  const pool = new StagingPool({ boundBytes: 4096, stageBytes: 1 << 20 });
  assert.equal(pool.tryAcquire()?.length, 4096);
  assert.equal(pool.tryAcquire(), undefined);
  pool.close();
});

// The feature-store contract on a real daemon (a separate process), each store a client of its own (as a
// producer and a trainer in two processes would be); plus what only the daemon gives: atomic samples under
// concurrent producers, the namespace token on every operation, and maxResidentBytes across processes.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { DaemonFeatureBackend } from '../../src/client/feature-backend.js';
import { connect, type TensorcastClient } from '../../src/client/tensorcast-client.js';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';
import { pattern, rejectsWith } from './connector-contract.js';
import { assertSame, mixedTensors, runFeatureStoreContract } from './feature-store-contract.js';

async function client(t: TestContext, d: TestDaemon): Promise<TensorcastClient> {
  const c = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => c.close());
  return c;
}

runFeatureStoreContract(
  'daemon',
  async (t) => {
    const d = await startDaemon(t);
    return { backend: async () => new DaemonFeatureBackend((await client(t, d)).objects()) };
  },
  { truncatable: false },
);

test('feature store (daemon): concurrent producers of one sample: one commits, the others get TC_ERR_CONFLICT, nothing mixed', async (t) => {
  const d = await startDaemon(t);
  const producers = await Promise.all([0, 1, 2, 3].map(async () => (await client(t, d)).features('race')));
  const reader = (await client(t, d)).features('race');
  for (let round = 0; round < 5; round++) {
    const results = await Promise.allSettled(producers.map((p, i) => p.put('s', mixedTensors(100 + round * 10 + i, 50_000))));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ ref: r.value, i }] : []));
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'TC_ERR_CONFLICT');
    assert.ok(won.length >= 1, 'some producer committed');
    const latest = (await reader.latest('s'))!;
    const winner = won.find(
      (w) => w.ref.generation === latest.generation && JSON.stringify(w.ref.fences) === JSON.stringify(latest.fences),
    );
    assert.ok(winner !== undefined, 'the manifest names a winner');
    assertSame(await reader.get(latest), mixedTensors(100 + round * 10 + winner.i, 50_000));
  }
  // Losers left nothing behind: one generation of one sample.
  const stats = await reader.stat();
  assert.deepEqual([stats.samples, stats.generations], [1, 1]);
});

test('feature store (daemon): the store token guards every operation; wrong or missing is TC_ERR_AUTH', async (t) => {
  const d = await startDaemon(t);
  const owner = (await client(t, d)).features('secret', { token: 'right-token-1' });
  const ref = await owner.put('s', mixedTensors(1, 1000));
  for (const other of [(await client(t, d)).features('secret', { token: 'wrong-token-2' }), (await client(t, d)).features('secret')]) {
    await rejectsWith(other.get(ref), 'TC_ERR_AUTH');
    await rejectsWith(other.put('t', mixedTensors(2, 10)), 'TC_ERR_AUTH');
    await rejectsWith(other.latest('s'), 'TC_ERR_AUTH');
    await rejectsWith(other.stat(), 'TC_ERR_AUTH');
  }
  const friend = (await client(t, d)).features('secret', { token: 'right-token-1' });
  assertSame(await friend.get(ref), mixedTensors(1, 1000));
});

test('feature store (daemon): maxResidentBytes is the namespace limit, enforced across producers', async (t) => {
  const d = await startDaemon(t);
  const limit = 40_000;
  const a = (await client(t, d)).features('bp', { maxResidentBytes: limit });
  const b = (await client(t, d)).features('bp', { maxResidentBytes: limit });
  const sample = (seed: number) => ({ x: { data: pattern(15_000, seed), dtype: 'U8' as const, shape: [15_000] } });
  const r1 = await a.put('1', sample(1));
  await b.put('2', sample(2));
  await assert.rejects(a.put('3', sample(3)), (e: Error & { code?: string; retryable?: boolean }) => {
    assert.deepEqual([e.code, e.retryable], ['TC_ERR_BACKPRESSURE', true], e.message);
    return true;
  });
  await rejectsWith(b.put('3', sample(3)), 'TC_ERR_BACKPRESSURE');
  assert.equal((await b.stat()).maxResidentBytes, limit);
  await b.release(r1);
  await a.put('3', sample(3));
  assert.ok((await a.stat()).residentBytes <= limit);
});

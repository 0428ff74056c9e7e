// The feature store across a cluster: a producer process whose SDK client is connected to daemon A puts
// samples; a consumer connected to daemon B of the same cluster (shared catalog, one token) reads them
// byte-identical straight from A, sees re-puts supersede (stale refs fail), releases them (deleted on A), and
// gets TC_ERR_UNAVAILABLE once A is down.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { SampleRef, TensorInput } from '../../src/features/sample-ref.js';
import { startCluster } from '../harness/cluster.js';
import { assertSame, mixedTensors } from '../contract/feature-store-contract.js';
import { pattern, rejectsWith } from '../contract/connector-contract.js';
import { moduleUrl, runNode } from '../helpers/run-node.js';
import { tempDir } from '../helpers/tmp.js';

const COUNT = 40;
const tensorsOf = (i: number): Record<string, TensorInput> =>
  i === 0 ? { big: { data: pattern(8 << 20, 77), dtype: 'F32', shape: [2 << 20] } } : mixedTensors(i, 1000 * (1 + (i % 7)));

test('features in a cluster: a producer on daemon A, a consumer on daemon B; byte-identical, stale refs fail, release deletes on A, A down -> TC_ERR_UNAVAILABLE', async (t) => {
  const catalog = `sqlite://${join(tempDir(t), 'catalog.db')}`;
  const { members } = await startCluster(t, catalog, { daemons: 2 });
  const [a, b] = members as [(typeof members)[0], (typeof members)[0]];
  const mod = (p: string): string => moduleUrl(p, import.meta.url);
  const script = `
    import { connect } from ${mod('../../src/client/tensorcast-client.js')};
    import { mixedTensors } from ${mod('../contract/feature-store-contract.js')};
    import { pattern } from ${mod('../contract/connector-contract.js')};
    const [url, token, count] = process.argv.slice(1);
    const client = await connect({ url, token });
    const store = client.features('xc', { token: 'store-secret' });
    for (let i = 0; i < Number(count); i++) {
      const tensors = i === 0 ? { big: { data: pattern(8 << 20, 77), dtype: 'F32', shape: [2 << 20] } } : mixedTensors(i, 1000 * (1 + (i % 7)));
      process.stdout.write(JSON.stringify(await store.put('s' + i, tensors)) + '\\n');
    }
    await client.close();`;
  const refs = (await runNode(script, [a.daemon.controlUrl, a.daemon.token, String(COUNT)])).map((l) => JSON.parse(l) as SampleRef);
  assert.equal(refs.length, COUNT);
  for (const ref of refs) assert.equal(ref.daemonId, a.daemon.daemonId);

  const consumer = b.client.features('xc', { token: 'store-secret' });
  for (const [i, ref] of refs.entries()) assertSame(await consumer.get(ref), tensorsOf(i));
  // get-into a caller's buffer works the same across daemons.
  const into = new Uint8Array(8 << 20);
  assert.equal((await consumer.get(refs[0]!, { into: { big: into } })).big!.data, into);
  assert.ok(Buffer.from(into).equals(pattern(8 << 20, 77)));
  // Nothing was copied to B: the objects live on A only.
  assert.deepEqual(await b.client.objects({ storeToken: 'store-secret' }).list('xc/'), []);

  // The store token is checked by A for B's reads too.
  await rejectsWith(b.client.features('xc', { token: 'wrong' }).get(refs[1]!), 'TC_ERR_AUTH');

  // A re-put on A supersedes: B's old ref fails (never the new bytes), the new ref reads on B.
  const producer = a.client.features('xc', { token: 'store-secret' });
  const again = await producer.put('s1', mixedTensors(1001, 500));
  assert.equal(again.generation, refs[1]!.generation + 1);
  await rejectsWith(consumer.get(refs[1]!), 'TC_ERR_NOT_FOUND');
  assertSame(await consumer.get(again), mixedTensors(1001, 500));

  // Release on B deletes on A.
  await consumer.release(refs[2]!);
  await rejectsWith(consumer.get(refs[2]!), 'TC_ERR_NOT_FOUND');
  assert.equal(await producer.latest('s2'), undefined);
  assert.deepEqual(await a.client.objects({ storeToken: 'store-secret' }).list('xc/s2/'), []);
  // A second consumer on B (no tombstone of its own) gets the coded stale error from A.
  await rejectsWith(b.client.features('xc', { token: 'store-secret' }).get(refs[2]!), 'TC_ERR_NOT_FOUND');
  const drained = await consumer.drain();
  assert.deepEqual(drained.failed, []);

  // A ref of a daemon the cluster does not know.
  await rejectsWith(consumer.get({ ...refs[3]!, daemonId: 'd-nosuchdaemon' }), 'TC_ERR_UNAVAILABLE');

  // A goes down: B's reads of A's samples fail with the retryable TC_ERR_UNAVAILABLE, twice (cached
  // connection, then a fresh lookup).
  await a.daemon.stop('SIGKILL');
  await rejectsWith(consumer.get(refs[3]!), 'TC_ERR_UNAVAILABLE');
  await rejectsWith(consumer.get(refs[4]!), 'TC_ERR_UNAVAILABLE');
});

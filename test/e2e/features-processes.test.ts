// The feature store across processes on a real daemon: a producer process puts samples of mixed dtypes and
// shapes (scalars, 0-size, one 64 MiB tensor) and a consumer here gets them byte-identical; a fast producer
// against a slow consumer under maxResidentBytes stays under the limit at every sampled moment and every
// sample arrives.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { connect } from '../../src/client/tensorcast-client.js';
import type { SampleRef } from '../../src/features/sample-ref.js';
import { startDaemon } from '../harness/daemon.js';
import { tempDir } from '../helpers/tmp.js';
import { assertSame, mixedTensors } from '../contract/feature-store-contract.js';
import { pattern, rejectsWith } from '../contract/connector-contract.js';
import type { TensorInput } from '../../src/features/sample-ref.js';

/** Runs `script` (an ES module body) in a node process; resolves with its stdout lines. */
function runNode(script: string, args: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out.split('\n').filter((l) => l !== '')) : reject(new Error(`exit ${code}: ${err}`)),
    );
  });
}

const mod = (path: string): string => JSON.stringify(new URL(path, import.meta.url).href);

test('features across processes: a producer process puts 1,000 samples (and one 64 MiB tensor); this process gets them byte-identical', async (t) => {
  const d = await startDaemon(t, { extraArgs: ['--object-memory', '512MiB'] });
  const script = `
    import { connect } from ${mod('../../src/client/tensorcast-client.js')};
    import { mixedTensors } from ${mod('../contract/feature-store-contract.js')};
    import { pattern } from ${mod('../contract/connector-contract.js')};
    const [url, token] = process.argv.slice(1);
    const client = await connect({ url, token });
    const store = client.features('xproc');
    for (let i = 0; i < 1000; i++) process.stdout.write(JSON.stringify(await store.put('s' + i, mixedTensors(i, 2 * (1 + (i % 50)) * 100))) + '\\n');
    const big = { data: pattern(64 << 20, 9), dtype: 'F32', shape: [16 << 20] };
    process.stdout.write(JSON.stringify(await store.put('big', { big })) + '\\n');
    await client.close();`;
  const lines = await runNode(script, [d.controlUrl, d.token]);
  assert.equal(lines.length, 1001);
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  const store = client.features('xproc');
  for (let i = 0; i < 1000; i++) {
    const ref = JSON.parse(lines[i]!) as SampleRef;
    assertSame(await store.get(ref), mixedTensors(i, 2 * (1 + (i % 50)) * 100));
    await store.release(ref);
  }
  const bigRef = JSON.parse(lines[1000]!) as SampleRef;
  const into = new Uint8Array(64 << 20);
  const got = await store.get(bigRef, { into: { big: into } });
  assert.equal(got.big!.data, into);
  assert.ok(Buffer.from(into).equals(pattern(64 << 20, 9)));
  await store.release(bigRef);
  const stats = await store.stat();
  assert.deepEqual([stats.samples, stats.objects], [0, 0]);
});

test('features backpressure: a fast producer against a slow consumer stays under maxResidentBytes, and every sample arrives', async (t) => {
  const d = await startDaemon(t);
  const limit = 400_000;
  const producerClient = await connect({ url: d.controlUrl, token: d.token });
  const consumerClient = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => Promise.all([producerClient.close(), consumerClient.close()]));
  const producer = producerClient.features('bp', { maxResidentBytes: limit, waitForRoomMs: 60_000 });
  const consumer = consumerClient.features('bp');
  const objects = consumerClient.objects();
  const count = 60;
  const queue: SampleRef[] = [];
  let produced = false;
  let maxSeen = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxSeen = Math.max(maxSeen, (await objects.namespaceInfo('bp')).residentBytes);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const produce = (async () => {
    for (let i = 0; i < count; i++) queue.push(await producer.put(`s${i}`, mixedTensors(i, 50_000)));
    produced = true;
  })();
  let received = 0;
  while (!produced || queue.length > 0) {
    const ref = queue.shift();
    if (ref === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, 10)); // a slow consumer
    assertSame(await consumer.get(ref), mixedTensors(Number(ref.sampleId.slice(1)), 50_000));
    await consumer.release(ref);
    received++;
  }
  await produce;
  sampling = false;
  await sampler;
  assert.equal(received, count);
  assert.ok(maxSeen > 0 && maxSeen <= limit, `resident bytes peaked at ${maxSeen}, limit ${limit}`);
});

test('features after a daemon is killed (spill on): committed samples survive byte-identical or fail with TC_ERR_OBJECT_LOST; a re-put supersedes a lost sample', async (t) => {
  const dataDir = tempDir(t);
  // 1 MiB of object memory: what fits stays in memory (lost at a kill), the rest spills to disk (kept).
  const args = ['--object-spill', '--object-memory', '1MiB'];
  const first = await startDaemon(t, { dataDir, extraArgs: args });
  const c1 = await connect({ url: first.controlUrl, token: first.token });
  const store1 = c1.features('crash');
  const tensorsOf = (i: number): Record<string, TensorInput> =>
    i % 2 === 0 ? mixedTensors(i, 200_000) : { big: { data: pattern(600_000, i), dtype: 'U8', shape: [600_000] } };
  const refs: SampleRef[] = [];
  for (let i = 0; i < 12; i++) refs.push(await store1.put(`s${i}`, tensorsOf(i)));
  await c1.close();
  await first.stop('SIGKILL');
  const second = await startDaemon(t, { dataDir, extraArgs: args });
  const c2 = await connect({ url: second.controlUrl, token: second.token });
  t.after(() => c2.close());
  const store = c2.features('crash');
  const outcomes = { ok: 0, lost: 0 };
  for (const [i, ref] of refs.entries()) {
    try {
      assertSame(await store.get(ref), tensorsOf(i));
      outcomes.ok++;
    } catch (error) {
      assert.equal((error as { code?: string }).code, 'TC_ERR_OBJECT_LOST', (error as Error).message);
      outcomes.lost++;
    }
    // Put again (its manifest may be lost too): the new generation supersedes the old one.
    const again = await store.put(ref.sampleId, mixedTensors(i + 100, 1000));
    assert.ok(again.generation > ref.generation);
    assertSame(await store.get(again), mixedTensors(i + 100, 1000));
    await rejectsWith(store.get(ref), 'TC_ERR_NOT_FOUND');
  }
  t.diagnostic(`after the kill: ${outcomes.ok} samples intact, ${outcomes.lost} lost`);
  assert.equal(outcomes.ok + outcomes.lost, refs.length);
  assert.ok(outcomes.ok > 0 && outcomes.lost > 0, JSON.stringify(outcomes));
});

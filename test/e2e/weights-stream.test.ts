// End to end: the SDK's streaming weight iterator (client.weights) against a real daemon. Every TP rank of
// 1, 2 and 4 streams byte-identical to the independent reference, in plan order; a small maxInFlightBytes
// still yields everything while the bytes fetched but not consumed stay within it; stopping early cancels
// the reads under way and closes the transfer, and the client keeps working.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { streamWeights, type WeightTensor } from '../../src/client/weight-stream.js';
import type { Transfer } from '../../src/client/transfers.js';
import { startDaemonWithModel } from '../harness/daemon.js';
import { assertTensorsEqual, readConfig, readTensors, referenceTp, type RefTensor } from '../helpers/reference-tp.js';

const KEY = 'model:tiny:v1';

/** The yielded tensors as a map for the reference comparison (keeping the order separately). */
function asMap(tensors: readonly WeightTensor[]): Map<string, RefTensor> {
  return new Map(tensors.map((t) => [t.name, { dtype: t.dtype, shape: t.shape, data: t.data }]));
}

/** A real transfer, watched: reads started and settled, the largest number in flight at once, close. */
function watch(transfer: Transfer) {
  const w = { reads: [] as [number, number][], inFlight: 0, maxInFlight: 0, settled: 0, closed: false };
  const watched: Transfer = {
    ...transfer,
    read: async (start, end, dest, signal) => {
      w.reads.push([start, end]);
      w.inFlight++;
      w.maxInFlight = Math.max(w.maxInFlight, w.inFlight);
      try {
        await transfer.read(start, end, dest, signal);
      } finally {
        w.inFlight--;
        w.settled++;
      }
    },
    close: async () => {
      w.closed = true;
      await transfer.close();
    },
  };
  return { w, watched };
}

test('weights: every rank of TP 1, 2, 4 streams equal to the reference, in plan order', async (t) => {
  const { client, model } = await startDaemonWithModel(t);
  await client.importModel(model, { key: KEY });
  const source = await readTensors(model);
  const config = readConfig(model);
  for (const tp of [1, 2, 4]) {
    for (let rank = 0; rank < tp; rank++) {
      const got: WeightTensor[] = [];
      for await (const tensor of client.weights(KEY, { tp: { size: tp, rank } })) got.push(tensor);
      const plan = await client.plan(KEY, { tp: { size: tp, rank } });
      assert.deepEqual(
        got.map((x) => x.name),
        plan.tensors.map((x) => x.name),
        `tp ${tp} rank ${rank}: order`,
      );
      assertTensorsEqual(asMap(got), referenceTp(source, config, tp, rank), `tp ${tp} rank ${rank}`);
    }
  }
  // A selection of named tensors, over shared memory.
  const names = ['model.norm.weight', 'model.layers.1.mlp.down_proj.weight'];
  const some: WeightTensor[] = [];
  for await (const tensor of client.weights(KEY, { tensors: names, transport: 'shm' })) some.push(tensor);
  assert.deepEqual(some.map((x) => x.name).sort(), [...names].sort());
  for (const x of some) assert.ok(Buffer.from(x.data).equals(Buffer.from(source.get(x.name)!.data)), x.name);
});

test('weights: a small maxInFlightBytes yields everything with the unconsumed bytes bounded; a tensor above it is read alone', async (t) => {
  const { client, model } = await startDaemonWithModel(t);
  await client.importModel(model, { key: KEY });
  const source = await readTensors(model);
  const config = readConfig(model);
  const max = 200_000; // embed_tokens and lm_head (2 x 256 KiB at TP 2) are larger; layer tensors are 32-64 KiB
  const plan = await client.plan(KEY, { tp: { size: 2, rank: 1 } });
  const { w, watched } = watch(await client.openTransfer(plan));
  const got: WeightTensor[] = [];
  let consumed = 0;
  let started = 0;
  const readsSeen = (): void => {
    // Every read that started since the last check: what was fetched but not consumed stays within max,
    // unless the read is one oversized tensor with nothing else outstanding.
    for (; started < w.reads.length; started++) {
      const [s, e] = w.reads[started]!;
      const outstanding = e - consumed;
      if (e - s > max) assert.equal(outstanding, e - s, `oversized read [${s}, ${e}) had company`);
      else assert.ok(outstanding <= max, `read [${s}, ${e}): ${outstanding} bytes outstanding > ${max}`);
    }
  };
  for await (const tensor of streamWeights(plan.tensors, watched, { maxInFlightBytes: max })) {
    // Asking for this tensor consumed the ones before it: reads started since then may count on that.
    consumed = plan.tensors[got.length]!.offset;
    readsSeen();
    got.push(tensor);
  }
  readsSeen();
  assert.deepEqual(
    got.map((x) => x.name),
    plan.tensors.map((x) => x.name),
  );
  assertTensorsEqual(asMap(got), referenceTp(source, config, 2, 1), 'bounded stream');
  assert.ok(w.reads.length > 4, `${w.reads.length} reads`);
  assert.ok(w.maxInFlight >= 2, 'windows are fetched ahead while the consumer works');
  // The reads cover the output exactly once, in order.
  const covered = w.reads.slice().sort((a, b) => a[0] - b[0]);
  assert.equal(covered[0]![0], 0);
  for (let i = 1; i < covered.length; i++) assert.equal(covered[i]![0], covered[i - 1]![1]);
  assert.equal(covered.at(-1)![1], plan.totalBytes);
  assert.ok(w.closed);

  await assert.rejects(
    async () => {
      for await (const x of client.weights(KEY, { maxInFlightBytes: 0 })) void x;
    },
    (e: Error & { code?: string }) => e.code === 'TC_ERR_INVALID_ARGUMENT',
  );
});

test('weights: a consumer that stops early releases the transfer; the client keeps working', async (t) => {
  const { client, model } = await startDaemonWithModel(t);
  await client.importModel(model, { key: KEY });
  for (const transport of ['tcp', 'shm'] as const) {
    const plan = await client.plan(KEY, { tp: { size: 2, rank: 0 } });
    const { w, watched } = watch(await client.openTransfer(plan, { transport }));
    let n = 0;
    for await (const tensor of streamWeights(plan.tensors, watched, { maxInFlightBytes: 300_000 })) {
      assert.ok(tensor.data.length > 0);
      if (++n === 3) break;
    }
    assert.ok(w.closed, `${transport}: closed`);
    assert.equal(w.settled, w.reads.length, `${transport}: no read outlives the stream`);
    assert.ok(w.reads.length < plan.tensors.length, `${transport}: reads stopped (${w.reads.length})`);
    // A failing consumer too.
    const again = watch(await client.openTransfer(plan, { transport }));
    await assert.rejects(async () => {
      for await (const tensor of streamWeights(plan.tensors, again.watched, { maxInFlightBytes: 300_000 })) {
        throw new Error(`consumer failed at ${tensor.name}`);
      }
    }, /consumer failed/);
    assert.ok(again.w.closed);
    assert.equal(again.w.settled, again.w.reads.length);
  }
  const whole = await client.load(KEY, { tp: { size: 2, rank: 0 } });
  const source = await readTensors(model);
  assertTensorsEqual(
    new Map(whole.tensors.map((x) => [x.name, { dtype: x.dtype, shape: x.shape, data: x.data }])),
    referenceTp(source, readConfig(model), 2, 0),
    'load after early stops',
  );
});

// First loads over TCP with real processes: the daemon reads a view's blocks while it sends them. The bytes
// are right for TP ranks over one and several connections, also with staging smaller than a block; a shard
// that shrank under the daemon fails the load with TC_ERR_SHORT_READ and no byte past the failure arrives.

import assert from 'node:assert/strict';
import { readdirSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Materializer } from '../../src/bytes/materialize.js';
import { openLocalArtifact } from '../../src/bytes/local-artifact.js';
import { connect, type TensorcastClient } from '../../src/client/tensorcast-client.js';
import { writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { compileProgram } from '../../src/layout/program.js';
import { normalizeView } from '../../src/layout/view.js';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';
import { tempDir } from '../helpers/tmp.js';

/** ~75 MB in two shards: many 4 MiB blocks, strided and contiguous runs in every TP rank. */
const MODEL = { hiddenSize: 1024, intermediateSize: 2816, numLayers: 2, numHeads: 16, numKvHeads: 4, vocabSize: 8192, shards: 2 };

async function setup(
  t: TestContext,
  extraArgs: readonly string[] = [],
): Promise<{ model: string; d: TestDaemon; client: TensorcastClient; expected: (tp: number, rank: number) => Promise<Buffer> }> {
  const dir = tempDir(t);
  const model = join(dir, 'model');
  await writeSyntheticModel(model, MODEL);
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir, ...extraArgs] });
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  await client.importModel(model, { key: 'm' });
  const local = await openLocalArtifact(model);
  t.after(() => local.close());
  const expected = async (tp: number, rank: number): Promise<Buffer> => {
    const plan = await client.plan('m', { tp: { size: tp, rank } });
    const program = compileProgram(normalizeView(local.index, plan.view));
    const out = Buffer.alloc(program.totalBytes);
    await new Materializer().run(program, local.source, out);
    return out;
  };
  return { model, d, client, expected };
}

test('first TCP loads stream in blocks: right bytes for TP 1/2/4 ranks over 1 and 4 connections', { timeout: 120_000 }, async (t) => {
  const { client, expected } = await setup(t);
  for (const [tp, rank, connections] of [
    [1, 0, 4],
    [2, 1, 1],
    [4, 3, 4],
    [4, 0, 1],
  ] as const) {
    const r = await client.load('m', { tp: { size: tp, rank }, transport: 'tcp', connections });
    assert.equal(r.stats.source, 'streamed', `TP=${tp} rank ${rank}: a first load streams`);
    assert.ok(
      Buffer.from(r.buffer.buffer, r.buffer.byteOffset, r.buffer.length).equals(await expected(tp, rank)),
      `TP=${tp} rank ${rank} over ${connections} connection(s): wrong bytes`,
    );
  }
});

test(
  'first TCP loads with 1 MiB of staging (a stage smaller than a block, shared by four connections)',
  { timeout: 120_000 },
  async (t) => {
    const { client, expected } = await setup(t, ['--staging-budget', '1MiB']);
    for (const [tp, rank] of [
      [1, 0],
      [4, 2],
    ] as const) {
      const r = await client.load('m', { tp: { size: tp, rank }, transport: 'tcp', connections: 4 });
      assert.equal(r.stats.source, 'streamed');
      assert.ok(
        Buffer.from(r.buffer.buffer, r.buffer.byteOffset, r.buffer.length).equals(await expected(tp, rank)),
        `TP=${tp} rank ${rank}: wrong bytes`,
      );
    }
  },
);

test(
  'a shard that shrank under the daemon: the first load fails with TC_ERR_SHORT_READ, nothing past the failure arrives',
  { timeout: 120_000 },
  async (t) => {
    const { d, client, expected } = await setup(t);
    const want = await expected(1, 0);
    const artifacts = join(d.dataDir, 'artifacts');
    const dir = join(
      artifacts,
      readdirSync(artifacts).find((n) => !n.startsWith('.'))!,
    );
    const shard = join(
      dir,
      readdirSync(dir).find((n) => n.startsWith('model-00002'))!,
    );
    truncateSync(shard, Math.floor(statSync(shard).size / 2));
    const SENTINEL = 0xa5;
    const dest = Buffer.alloc(want.length, SENTINEL);
    await assert.rejects(client.load('m', { transport: 'tcp', connections: 1, into: dest }), { code: 'TC_ERR_SHORT_READ' });
    // One connection: frames arrive in order, so what arrived is a prefix of the view and nothing after it.
    let delivered = 0;
    while (delivered < want.length && dest[delivered] === want[delivered]) delivered++;
    assert.ok(delivered < want.length, 'the load cannot have delivered everything');
    assert.ok(delivered > 0, 'the blocks before the missing bytes were sent');
    for (let i = delivered; i < dest.length; i++)
      if (dest[i] !== SENTINEL) assert.fail(`byte ${i} arrived after the failure at ${delivered}`);
    const health = await fetch(`${d.controlUrl}/healthz`);
    assert.equal(health.status, 200, 'the daemon is still serving');
  },
);

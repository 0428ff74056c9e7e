// The memory budget with real daemon processes: loads that cannot get a replica stream instead of failing,
// 32 concurrent mixed loads under a small budget all deliver correct bytes while the daemon's peak RSS
// stays near the budget, and sequential full loads of a model larger than the budget all succeed.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { peakRssBytes } from '../helpers/proc-memory.js';
import { startDaemon } from '../harness/daemon.js';
import { writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { connect, type Transport } from '../../src/client/tensorcast-client.js';
import { openLocalArtifact } from '../../src/bytes/local-artifact.js';
import { Materializer } from '../../src/bytes/materialize.js';
import { compileProgram } from '../../src/layout/program.js';
import { normalizeView } from '../../src/layout/view.js';
import { isTensorcastError } from '../../src/core/errors.js';
import { encodeControl, FrameType } from '../../src/protocol/frames.js';
import { connect as netConnect, type Socket } from 'node:net';
import { defaultStagingBytes } from '../../src/store/view-service.js';

/** Llama-shaped, about 95 MB of bf16 (TP=1 is larger than the 64 MB budget, TP=2 fits it). */
const MODEL = { hiddenSize: 1024, intermediateSize: 2816, numLayers: 2, numHeads: 16, numKvHeads: 4, vocabSize: 12288, shards: 2 };
/** What a Node daemon holds besides replicas and stages (runtime, heap, sqlite, fastify). */
const BASE_RSS_BYTES = 150e6;

async function concurrentLoads(t: TestContext, budget: number): Promise<void> {
  const dir = tempDir(t);
  const model = join(dir, 'model');
  await writeSyntheticModel(model, MODEL);
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir, '--memory-budget', String(budget)] });
  const admin = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => admin.close());
  await admin.importModel(model, { key: 'm' });
  const local = await openLocalArtifact(model);
  t.after(() => local.close());
  const materializer = new Materializer();
  const expected = new Map<string, Promise<Buffer>>();
  const transports: Transport[] = ['tcp', 'tcp', 'shm', 'files'];
  // Per 8 loads: one TP=1, two TP=2, five TP=4; over the 32, every (TP size, transport) pair occurs.
  const sizes = [1, 2, 4, 4, 2, 4, 4, 4];
  const outcomes = await Promise.all(
    Array.from({ length: 32 }, async (_, i) => {
      const size = sizes[i % 8]!;
      const tp = { size, rank: (Math.floor(i / 8) + i) % size };
      const transport = transports[(i + Math.floor(i / 8)) % 4]!;
      const c = await connect({ url: d.controlUrl, token: d.token, connections: 1 + (i % 3) });
      try {
        const plan = await c.plan('m', { tp });
        const viewBytes = plan.totalBytes;
        let got: Buffer;
        try {
          got = Buffer.from((await c.load('m', { tp, transport, timeoutMs: 240_000 })).buffer);
        } catch (error) {
          // The one documented refusal: a shm replica of a view larger than the whole budget.
          if (transport === 'shm' && viewBytes > budget && isTensorcastError(error, 'TC_ERR_BUDGET')) return 'refused';
          throw error;
        }
        const key = plan.viewId ?? 'identity';
        let want = expected.get(key);
        if (want === undefined) {
          const program = compileProgram(normalizeView(local.index, plan.view));
          want = (async () => {
            const out = Buffer.alloc(program.totalBytes);
            await materializer.run(program, local.source, out);
            return out;
          })();
          expected.set(key, want);
        }
        assert.ok(got.equals(await want), `load ${i} (tp ${size}/${tp.rank} over ${transport}): wrong bytes`);
        return 'ok';
      } finally {
        await c.close();
      }
    }),
  );
  const peak = peakRssBytes(d.child.pid!);
  const staging = defaultStagingBytes(budget);
  const allowance = budget + 2 * staging + BASE_RSS_BYTES;
  // A line a reader of the test log can find: what the daemon's peak was, against what bound.
  console.log(
    `daemon peak RSS under a ${(budget / 1e6).toFixed(0)} MB budget: ${(peak / 1e6).toFixed(1)} MB ` +
      `(allowed ${(allowance / 1e6).toFixed(0)} MB = budget + 2 x ${(staging / 1e6).toFixed(0)} MB staging + ${BASE_RSS_BYTES / 1e6} MB base)`,
  );
  assert.equal(outcomes.filter((o) => o === 'ok').length + outcomes.filter((o) => o === 'refused').length, 32);
  assert.ok(outcomes.filter((o) => o === 'ok').length >= 28, `too many refusals: ${outcomes.join(' ')}`);
  assert.ok(peak < allowance, `daemon peak RSS ${peak} exceeds ${allowance}`);
}

test(
  '32 concurrent mixed loads (TP 1/2/4 over tcp/shm/files) under a 64 MB budget: correct bytes, RSS near the budget',
  { timeout: 300_000 },
  async (t) => {
    await concurrentLoads(t, 64e6);
  },
);

test('32 concurrent mixed loads under a 200 MB budget: correct bytes, RSS near the budget', { timeout: 600_000 }, async (t) => {
  await concurrentLoads(t, 200e6);
});

test('16 MB budget, a 33 MB model: three sequential full loads all stream and succeed, none hangs', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'model');
  await writeSyntheticModel(model, {
    hiddenSize: 1024,
    intermediateSize: 2048,
    numLayers: 1,
    numHeads: 16,
    numKvHeads: 4,
    vocabSize: 4096,
    shards: 2,
  });
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir, '--memory-budget', '16MB'] });
  assert.equal((await runCli(['import', model, '--key', 'm', ...d.clientArgs])).code, 0);
  const ref = join(dir, 'ref.safetensors');
  assert.equal((await runCli(['slice', model, '--out', ref])).code, 0);
  for (let i = 0; i < 3; i++) {
    const out = join(dir, `out-${i}.safetensors`);
    const t0 = Date.now();
    const r = await runCli(['load', 'm', '--out', out, '--json', '--timeout', '60000', ...d.clientArgs]);
    assert.equal(r.code, 0, `load ${i}: ${r.stderr}`);
    assert.ok(Date.now() - t0 < 60_000, `load ${i} took ${Date.now() - t0} ms`);
    assert.equal((JSON.parse(r.stdout) as { source: string }).source, 'streamed');
    assert.ok(readFileSync(out).equals(readFileSync(ref)), `load ${i}: wrong bytes`);
  }
});

test('stalled readers hold at most the staging bound; loads after them still stream', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'model');
  await writeSyntheticModel(model, MODEL);
  const budget = 16e6;
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir, '--memory-budget', String(budget)] });
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  const { artifactId } = await client.importModel(model, { key: 'm' });
  const [host, port] = [d.dataAddress.slice(0, d.dataAddress.lastIndexOf(':')), Number(d.dataAddress.split(':').pop())];
  // Readers that each ask for a different 16 MiB of some view (first reads: streamed) with a full window of
  // credit, then never read a byte.
  const stalled: Socket[] = [];
  for (const tp of [undefined, { size: 2, rank: 0 }, { size: 2, rank: 1 }, { size: 4, rank: 0 }, { size: 4, rank: 3 }]) {
    const plan = await client.plan('m', tp === undefined ? {} : { tp });
    for (let start = 0; start + (16 << 20) <= plan.totalBytes; start += 16 << 20) {
      const s = netConnect({ host, port });
      s.on('error', () => undefined);
      s.write(encodeControl(FrameType.HELLO, 0, { version: 1, token: d.token, client: 'stalled-reader' }));
      const load = { artifactId, view: plan.view ?? null, viewId: plan.viewId ?? null, start, end: start + (16 << 20) };
      s.write(encodeControl(FrameType.LOAD, 1, { ...load, credit: 64 << 20, timeoutMs: 20_000 }));
      s.pause();
      stalled.push(s);
    }
  }
  t.after(() => stalled.forEach((s) => s.destroy()));
  assert.ok(stalled.length >= 10, `${stalled.length} stalled readers`);
  await new Promise((r) => setTimeout(r, 5000));
  const peak = peakRssBytes(d.child.pid!);
  const allowance = budget + defaultStagingBytes(budget) + BASE_RSS_BYTES;
  console.log(
    `daemon peak RSS with ${stalled.length} stalled readers: ${(peak / 1e6).toFixed(1)} MB (allowed ${(allowance / 1e6).toFixed(0)} MB)`,
  );
  assert.ok(peak < allowance, `daemon peak RSS ${peak} exceeds ${allowance}`);
  for (const s of stalled) s.destroy();
  const r = await client.load('m', { tp: { size: 4, rank: 1 }, timeoutMs: 60_000 });
  assert.equal(r.stats.source, 'streamed');
});

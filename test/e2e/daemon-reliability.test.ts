// Reliability with real processes: a daemon killed (SIGKILL) in the middle of a load, and 16 concurrent
// clients loading different ranks and views under a memory budget that forces eviction.

import assert from 'node:assert/strict';
import { readdirSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { CLI, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon } from '../harness/daemon.js';
import { peakRssBytes } from '../helpers/proc-memory.js';
import { defaultStagingBytes } from '../../src/store/view-service.js';
import { writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { connect, type Selection } from '../../src/client/tensorcast-client.js';
import {
  assertFileEquals,
  assertTensorsEqual,
  readConfig,
  readTensors,
  referenceTp,
  referenceView,
  type RefTensor,
  type RefView,
} from '../helpers/reference-tp.js';

const MEDIUM = { hiddenSize: 1024, intermediateSize: 2816, numLayers: 2, numHeads: 16, numKvHeads: 4, vocabSize: 8192, shards: 2 };

test('SIGKILL during a load: retryable coded error, nothing at --out; after a restart the load succeeds', async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'model');
  await writeSyntheticModel(model, { ...MEDIUM, hiddenSize: 2048, intermediateSize: 5632, vocabSize: 16384 });
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir] });
  assert.equal((await runCli(['import', model, '--key', 'big', ...d.clientArgs])).code, 0);
  const outDir = join(dir, 'out');
  mkdirSync(outDir);
  const out = join(outDir, 'x.safetensors');
  let result: { code: number | null; stderr: string } | undefined;
  for (let attempt = 0; attempt < 3 && result === undefined; attempt++) {
    const child = spawn(process.execPath, [CLI, 'load', 'big', '--out', out, '--connections', '1', ...d.clientArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    // Kill the daemon once the load has started writing its (temporary) output.
    for (let i = 0; i < 2000 && readdirSync(outDir).length === 0 && child.exitCode === null; i++)
      await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 20));
    const finishedFirst = child.exitCode !== null;
    await d.stop('SIGKILL');
    const code = await exited;
    if (finishedFirst || code === 0) continue; // the load won the race: not this test's case, try again
    result = { code, stderr };
  }
  assert.ok(result !== undefined, 'the load finished before the daemon could be killed in 3 attempts');
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /error TC_ERR_UNAVAILABLE: .*\[retryable\]/);
  assert.deepEqual(readdirSync(outDir), [], 'no output and no temporary file left behind');
  const d2 = await startDaemon(t, { dataDir: d.dataDir, extraArgs: ['--import-root', dir] });
  const r = await runCli(['load', 'big', '--out', out, ...d2.clientArgs]);
  assert.equal(r.code, 0, r.stderr);
  await assertFileEquals(out, await readTensors(model), 'load after restart');
});

test('16 concurrent clients load different ranks and views: every byte verified, the memory budget holds', async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'model');
  await writeSyntheticModel(model, MEDIUM);
  const budget = 48 << 20;
  // Every view read over TCP asks for a memory replica at once, so the budget is what bounds them.
  const d = await startDaemon(t, {
    extraArgs: ['--import-root', dir, '--memory-budget', String(budget), '--replica-admission', 'always'],
  });
  const admin = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => admin.close());
  await admin.importModel(model, { key: 'med' });
  const selections: Selection[] = [{ tp: { size: 1, rank: 0 } }];
  for (const size of [2, 4, 8]) for (let rank = 0; rank < size; rank++) selections.push({ tp: { size, rank } });
  selections.push({
    view: {
      'model.embed_tokens.weight': [
        [100, 3000],
        [-256, 256],
      ],
      'model.layers.1.mlp.down_proj.weight': [null, [7, 1000]],
    },
  });
  assert.equal(selections.length, 16);
  // Expected bytes come from the independent reference slicer, not from the daemon's own plan.
  const source = await readTensors(model);
  const config = readConfig(model);
  const expectedOf = (sel: Selection): Map<string, RefTensor> =>
    sel.tp !== undefined ? referenceTp(source, config, sel.tp.size, sel.tp.rank) : referenceView(source, sel.view as RefView);
  const loads = Promise.all(
    selections.map(async (sel, i) => {
      const c = await connect({ url: d.controlUrl, token: d.token, connections: 1 + (i % 4) });
      try {
        const r = await c.load('med', { ...sel, transport: (['tcp', 'tcp', 'shm', 'files'] as const)[i % 4]! });
        const got = new Map(r.tensors.map((x): [string, RefTensor] => [x.name, { dtype: x.dtype, shape: x.shape, data: x.data }]));
        let ok = true;
        try {
          assertTensorsEqual(got, expectedOf(sel), `selection ${i}`);
        } catch (error) {
          t.diagnostic(String(error));
          ok = false;
        }
        return { ok, bytes: r.buffer.length, source: r.stats.source };
      } finally {
        await c.close();
      }
    }),
  );
  const results = await loads;
  // The kernel's count of the daemon's peak resident memory (not a sample): replicas, staging and the rest.
  const peak = peakRssBytes(d.child.pid!);
  const allowance = budget + 2 * defaultStagingBytes(budget) + 150e6;
  console.log(`daemon peak RSS ${(peak / 1e6).toFixed(1)} MB, allowed ${(allowance / 1e6).toFixed(0)} MB`);
  assert.deepEqual(
    results.map((r) => r.ok),
    new Array<boolean>(16).fill(true),
  );
  assert.ok(peak < allowance, `daemon peak RSS ${peak} exceeds budget + 2 x staging + 150 MB = ${allowance}`);
  assert.ok(
    results.some((r) => r.source === 'streamed'),
    'the TP=1 view is larger than the budget and is streamed',
  );
  const metrics = await fetch(`${d.controlUrl}/metrics`, { headers: { authorization: `Bearer ${d.token}` } }).then((r) => r.text());
  assert.match(metrics, /tensorcast_replica_evictions_total [1-9]/);
});

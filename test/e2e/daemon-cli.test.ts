// End to end through the CLI, as a user works: serve, import, ls, load (TCP and shared memory), export,
// restart. Every output is checked byte for byte against `slice` of the same model.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { fixture, runCli } from '../helpers/cli.js';
import { missingPython, pythonWith } from '../helpers/python.js';
import { skipOrFail } from '../helpers/require.js';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon } from '../harness/daemon.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { readSafetensorsFile } from '../../src/format/safetensors-file.js';

let root: string;
let model: string;
before(async () => {
  root = mkdtempSync(join(tmpdir(), 'tensorcast-e2e-'));
  model = join(root, 'tiny');
  await writeSyntheticModel(model, TINY_LLAMA);
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Tensors of a safetensors file as name -> [dtype, shape, bytes]. */
function tensorsOf(path: string): Promise<Map<string, [string, string, string]>> {
  return readSafetensorsFile(path).then((info) => {
    const bytes = readFileSync(path);
    return new Map(
      info.header.tensors.map((t) => [
        t.name,
        [t.dtype, t.shape.join(','), bytes.subarray(info.header.dataStart + t.begin, info.header.dataStart + t.end).toString('base64')],
      ]),
    );
  });
}

/** `tensorcast ls --json`. */
interface LsJson {
  artifacts: {
    artifactId: string;
    totalBytes: number;
    tensorCount: number;
    keys: { key: string; version: number }[];
    replicas: { tier: string; viewId: string | null }[];
  }[];
}

test('daemon via the CLI: import, ls, load over TCP and shm equal slice, re-import is a no-op, restart keeps everything', async (t) => {
  const d = await startDaemon(t, { extraArgs: ['--import-root', root] });
  const dir = tempDir(t);
  const imp = await runCli(['import', model, '--key', 'model:tiny:v1', ...d.clientArgs]);
  assert.equal(imp.code, 0, imp.stderr);
  const id = imp.stdout.trim();
  assert.match(id, /^tc1:[0-9a-f]{64}$/);
  assert.match(imp.stderr, /imported: 21 tensors.*via path.*model:tiny:v1 v1/);
  const again = await runCli(['import', model, '--key', 'model:tiny:v1', '--json', ...d.clientArgs]);
  const againJson = JSON.parse(again.stdout) as { artifactId: string; created: boolean; key: { version: number } };
  assert.deepEqual([againJson.artifactId, againJson.created, againJson.key.version], [id, false, 1]);
  // The same model uploaded (not via path) is the same artifact.
  const up = await runCli(['import', model, '--key', 'model:tiny:uploaded', '--via', 'upload', '--json', ...d.clientArgs]);
  assert.equal((JSON.parse(up.stdout) as { artifactId: string; via: string }).artifactId, id);
  const ls = await runCli(['ls', '--json', ...d.clientArgs]);
  assert.equal(ls.code, 0, ls.stderr);
  const lsJson = JSON.parse(ls.stdout) as LsJson;
  assert.equal(lsJson.artifacts.length, 1);
  const listed = lsJson.artifacts[0]!;
  assert.equal(listed.artifactId, id);
  assert.equal(listed.tensorCount, 21);
  assert.ok(listed.totalBytes > 3 << 20 && listed.totalBytes < 4 << 20, String(listed.totalBytes));
  assert.deepEqual(listed.keys.map((k) => [k.key, k.version]).sort(), [
    ['model:tiny:uploaded', 1],
    ['model:tiny:v1', 1],
  ]);
  assert.ok(listed.replicas.some((r) => r.tier === 'disk' && r.viewId === null));

  for (const [sel, name] of [
    [['--tp-size', '4', '--tp-rank', '2'], 'tp4r2'],
    [['--tp-size', '2', '--tp-rank', '1'], 'tp2r1'],
    [['--view', '{"model.layers.0.mlp.down_proj.weight": [[8, 16], [-100, 60]]}'], 'view'],
    [['--tensors', 'lm_head.weight,model.norm.weight'], 'tensors'],
    [[], 'whole'],
  ] as const) {
    const ref = join(dir, `${name}.slice.safetensors`);
    assert.equal((await runCli(['slice', model, '--out', ref, ...sel])).code, 0);
    for (const transport of [[], ['--shm'], ['--files']]) {
      const out = join(dir, `${name}${transport[0] ?? '.tcp'}.safetensors`);
      const r = await runCli(['load', 'model:tiny:v1', '--out', out, '--json', ...sel, ...transport, ...d.clientArgs]);
      assert.equal(r.code, 0, `${name} ${transport.join(' ')}: ${r.stderr}`);
      const stats = JSON.parse(r.stdout) as { route: string; transport: string; bytes: number; source: string };
      assert.equal(stats.route, 'local');
      assert.equal(stats.transport, transport[0]?.slice(2) ?? 'tcp');
      assert.deepEqual(readFileSync(out), readFileSync(ref), `${name} ${stats.transport} equals slice`);
    }
  }
  const both = await runCli(['load', 'model:tiny:v1', '--out', join(dir, 'x.safetensors'), '--shm', '--files', ...d.clientArgs]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /TC_ERR_INVALID_ARGUMENT/);
  // A view read once streams; read again it earns a memory replica; the third read is a hit.
  const sources: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await runCli([
      'load',
      'model:tiny:v1',
      '--out',
      join(dir, `p${i}.safetensors`),
      '--tp-size',
      '8',
      '--tp-rank',
      '3',
      ...d.clientArgs,
    ]);
    assert.equal(r.code, 0, r.stderr);
    sources.push(/route local via tcp \((\w+)\)/.exec(r.stdout)![1]!);
  }
  assert.deepEqual(sources, ['streamed', 'materialized', 'replica_hit']);
  const metrics = await fetch(`${d.controlUrl}/metrics`, { headers: { authorization: `Bearer ${d.token}` } }).then((r) => r.text());
  assert.match(metrics, /tensorcast_loads_total\{route="local",transport="tcp",source="replica_hit",outcome="ok"\} [1-9]/);
  assert.match(metrics, /tensorcast_loads_total\{route="local",transport="shm",source="materialized",outcome="ok"\} [1-9]/);
  assert.match(metrics, /tensorcast_replica_bytes\{tier="memory"\} [1-9]/);

  // Restart on the same data directory: keys and artifacts are still there.
  assert.equal(await d.stop('SIGTERM'), 0);
  const d2 = await startDaemon(t, { dataDir: d.dataDir, extraArgs: ['--import-root', root] });
  const ls2 = JSON.parse((await runCli(['ls', '--json', ...d2.clientArgs])).stdout) as LsJson;
  assert.ok(ls2.artifacts.some((a) => a.artifactId === id && a.keys.some((k) => k.key === 'model:tiny:v1' && k.version === 1)));
  const out = join(dir, 'after-restart.safetensors');
  assert.equal((await runCli(['load', 'model:tiny:v1', '--out', out, '--tp-size', '4', '--tp-rank', '2', ...d2.clientArgs])).code, 0);
  assert.deepEqual(readFileSync(out), readFileSync(join(dir, 'tp4r2.slice.safetensors')));
});

test('export: a model directory (shards + index + config) and a TP rank in vLLM sharded_state naming', async (t) => {
  const d = await startDaemon(t, { extraArgs: ['--import-root', root] });
  assert.equal((await runCli(['import', model, '--key', 'm', ...d.clientArgs])).code, 0);
  const dir = tempDir(t);
  const full = join(dir, 'full');
  const r = await runCli(['export', 'm', full, '--max-shard-size', '1MB', ...d.clientArgs]);
  assert.equal(r.code, 0, r.stderr);
  const files = readdirSync(full).sort();
  assert.ok(files.includes('config.json'));
  assert.ok(files.includes('model.safetensors.index.json'));
  assert.ok(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length >= 3, files.join(','));
  // The export is the same model: inspect agrees tensor by tensor, and slicing it equals slicing the source.
  const a = await runCli(['inspect', full, '--json', '--id']);
  const b = await runCli(['inspect', model, '--json', '--id']);
  assert.equal((JSON.parse(a.stdout) as { artifactId: string }).artifactId, (JSON.parse(b.stdout) as { artifactId: string }).artifactId);
  const rank = join(dir, 'rank1');
  const rr = await runCli(['export', 'm', rank, '--tp-size', '2', '--tp-rank', '1', ...d.clientArgs]);
  assert.equal(rr.code, 0, rr.stderr);
  assert.deepEqual(readdirSync(rank).sort(), ['config.json', 'model-rank-1-part-0.safetensors']);
  const ref = join(dir, 'ref.safetensors');
  await runCli(['slice', model, '--out', ref, '--tp-size', '2', '--tp-rank', '1']);
  assert.deepEqual(await tensorsOf(join(rank, 'model-rank-1-part-0.safetensors')), await tensorsOf(ref));
  // A non-empty target is refused and left alone.
  const again = await runCli(['export', 'm', full, ...d.clientArgs]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /not empty/);
});

test('export: transformers loads the exported directory with the same weights', async (t) => {
  const py = pythonWith(['torch', 'transformers', 'safetensors']);
  if (py === undefined) {
    skipOrFail(t, missingPython(['torch', 'transformers', 'safetensors']));
    return;
  }
  const dir = tempDir(t);
  const src = join(dir, 'hf');
  const made = spawnSync(py, [fixture('make_transformers_model.py'), src], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const d = await startDaemon(t);
  const imp = await runCli(['import', src, '--key', 'hf', ...d.clientArgs]);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stderr, /via upload/);
  const out = join(dir, 'exported');
  assert.equal((await runCli(['export', 'hf', out, '--max-shard-size', '1MB', ...d.clientArgs])).code, 0);
  const check: SpawnSyncReturns<string> = spawnSync(
    py,
    [
      '-c',
      `import sys, torch
from transformers import AutoModelForCausalLM
a = AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.bfloat16).state_dict()
b = AutoModelForCausalLM.from_pretrained(sys.argv[2], torch_dtype=torch.bfloat16).state_dict()
assert a.keys() == b.keys()
for k in a: assert torch.equal(a[k], b[k]), k
print("ok", len(a))`,
      src,
      out,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout, /^ok \d+/);
  for (const rank of [0, 1]) {
    const o = join(dir, `r${rank}.safetensors`);
    assert.equal((await runCli(['load', 'hf', '--out', o, '--tp-size', '2', '--tp-rank', String(rank), ...d.clientArgs])).code, 0);
    const c: SpawnSyncReturns<string> = spawnSync(py, [fixture('check_slices.py'), src, o, 'tp', String(rank), '2'], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
  }
  assert.ok(existsSync(join(out, 'config.json')));
});

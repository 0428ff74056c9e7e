// End to end: `tensorcast inspect` and `tensorcast slice` run as processes on real model directories.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fixture, runCli } from '../helpers/cli.js';
import { missingPython, pythonWith } from '../helpers/python.js';
import { skipOrFail } from '../helpers/require.js';
import { tempDir } from '../helpers/tmp.js';
import { naiveSlice } from '../helpers/naive-slice.js';
import { assertFileEquals, readConfig, readTensors, referenceTp, referenceView } from '../helpers/reference-tp.js';
import { readSafetensorsFile } from '../../src/format/safetensors-file.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { openLocalArtifact } from '../../src/bytes/local-artifact.js';
import { readExactly } from '../../src/bytes/byte-source.js';
import { readFile } from 'node:fs/promises';

let root: string;
let model: string;
before(async () => {
  root = mkdtempSync(join(tmpdir(), 'tensorcast-cli-'));
  model = join(root, 'tiny');
  await writeSyntheticModel(model, TINY_LLAMA);
});
after(() => rmSync(root, { recursive: true, force: true }));

async function tensorBytes(path: string, name: string): Promise<Uint8Array> {
  const a = await openLocalArtifact(path);
  try {
    const t = a.index.byName.get(name)!;
    const out = new Uint8Array(t.byteLength);
    await readExactly(a.source, t.offset, out);
    return out;
  } finally {
    await a.close();
  }
}

test('inspect: lists every tensor of a sharded model with dtype, shape, bytes and shard; --json too', async () => {
  const r = await runCli(['inspect', model]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 3 + 9 * TINY_LLAMA.numLayers);
  const embed = lines.find((l) => l.startsWith('model.embed_tokens.weight'))!.split(/\s+/);
  assert.deepEqual(embed, ['model.embed_tokens.weight', 'BF16', '[1024,256]', String(1024 * 256 * 2), 'model-00001-of-00002.safetensors']);
  const j = await runCli(['inspect', model, '--json']);
  const parsed = JSON.parse(j.stdout) as { tensors: { name: string }[]; shards: unknown[] };
  assert.equal(parsed.tensors.length, lines.length);
  assert.equal(parsed.shards.length, 2);
  const single = await runCli(['inspect', join(model, 'model-00002-of-00002.safetensors')]);
  assert.equal(single.code, 0);
});

test('inspect: invalid files exit 2 with the code and the file on stderr', async (t) => {
  const dir = tempDir(t);
  const bad = join(dir, 'bad.safetensors');
  const h = Buffer.from('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(bad, Buffer.concat([prefix, h, Buffer.alloc(4)]));
  const r = await runCli(['inspect', bad]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /TC_ERR_FORMAT_SIZE_MISMATCH.*bad\.safetensors.*'t'/);
  assert.equal(r.stdout, '');
  const missing = await runCli(['inspect', join(dir, 'nope')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /TC_ERR_NOT_FOUND/);
  // A shard that disagrees with the index.
  const broken = join(dir, 'broken');
  mkdirSync(broken);
  for (const f of readdirSync(model)) copyFileSync(join(model, f), join(broken, f));
  const idx = JSON.parse(await readFile(join(broken, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  idx.weight_map['ghost.weight'] = 'model-00001-of-00002.safetensors';
  writeFileSync(join(broken, 'model.safetensors.index.json'), JSON.stringify(idx));
  const mismatch = await runCli(['inspect', broken]);
  assert.equal(mismatch.code, 2);
  assert.match(mismatch.stderr, /TC_ERR_FORMAT_SHARD_MISMATCH.*ghost\.weight/);
});

test('slice: --view and --tensors write a valid file with exactly the selected bytes', async (t) => {
  const dir = tempDir(t);
  const out = join(dir, 'view.safetensors');
  const view = {
    'model.layers.0.mlp.down_proj.weight': [
      [-16, 8],
      [100, 300],
    ],
    'model.norm.weight': null,
  };
  const r = await runCli(['slice', model, '--out', out, '--view', JSON.stringify(view), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { tensors: number; stats: { amplification: number } };
  assert.equal(summary.tensors, 2);
  const info = await readSafetensorsFile(out);
  const down = info.header.tensors.find((x) => x.name === 'model.layers.0.mlp.down_proj.weight')!;
  assert.deepEqual(down.shape, [8, 300]);
  const src = await tensorBytes(model, 'model.layers.0.mlp.down_proj.weight');
  const want = naiveSlice(src, [256, 512], 2, [
    [240, 8],
    [100, 300],
  ]);
  const file = await readFile(out);
  assert.deepEqual(file.subarray(info.header.dataStart + down.begin, info.header.dataStart + down.end), Buffer.from(want));
  const viewFile = join(dir, 'v.json');
  writeFileSync(viewFile, JSON.stringify({ 'lm_head.weight': [[0, 2]] }));
  const sub = join(dir, 'sub.safetensors');
  const r2 = await runCli(['slice', model, '--out', sub, '--tensors', 'lm_head.weight,model.norm.weight', '--view', `@${viewFile}`]);
  assert.equal(r2.code, 0, r2.stderr);
  const info2 = await readSafetensorsFile(sub);
  assert.deepEqual(info2.header.tensors.map((x) => [x.name, x.shape]).sort(), [
    ['lm_head.weight', [2, 256]],
    ['model.norm.weight', [256]],
  ]);
});

test('slice: TP ranks together cover the model; row-parallel and column-parallel shapes', async (t) => {
  const dir = tempDir(t);
  for (let rank = 0; rank < 4; rank++) {
    const out = join(dir, `r${rank}.safetensors`);
    const r = await runCli(['slice', model, '--out', out, '--tp-size', '4', '--tp-rank', String(rank)]);
    assert.equal(r.code, 0, r.stderr);
    const info = await readSafetensorsFile(out);
    const shape = (n: string) => info.header.tensors.find((x) => x.name === n)!.shape;
    assert.deepEqual(shape('model.layers.1.self_attn.q_proj.weight'), [64, 256]);
    assert.deepEqual(shape('model.layers.1.self_attn.k_proj.weight'), [32, 256]);
    assert.deepEqual(shape('model.layers.1.self_attn.o_proj.weight'), [256, 64]);
    assert.deepEqual(shape('model.layers.1.mlp.down_proj.weight'), [256, 128]);
    assert.deepEqual(shape('model.embed_tokens.weight'), [256, 256]);
    assert.deepEqual(shape('model.norm.weight'), [256]);
  }
  const cols = await Promise.all(
    [0, 1, 2, 3].map(async (r) => {
      const out = join(dir, `r${r}.safetensors`);
      const info = await readSafetensorsFile(out);
      const x = info.header.tensors.find((y) => y.name === 'model.layers.0.self_attn.o_proj.weight')!;
      return (await readFile(out)).subarray(info.header.dataStart + x.begin, info.header.dataStart + x.end);
    }),
  );
  const full = await tensorBytes(model, 'model.layers.0.self_attn.o_proj.weight');
  for (let r = 0; r < 4; r++)
    assert.deepEqual(
      cols[r],
      Buffer.from(
        naiveSlice(full, [256, 256], 2, [
          [0, 256],
          [r * 64, 64],
        ]),
      ),
    );
});

test('slice: every rank of TP 1, 2, 4 and 8 equals the independent reference slicer', async (t) => {
  const dir = tempDir(t);
  const source = await readTensors(model);
  const config = readConfig(model);
  for (const size of [1, 2, 4, 8])
    for (let rank = 0; rank < size; rank++) {
      const out = join(dir, `tp${size}-${rank}.safetensors`);
      const r = await runCli(['slice', model, '--out', out, '--tp-size', String(size), '--tp-rank', String(rank)]);
      assert.equal(r.code, 0, r.stderr);
      await assertFileEquals(out, referenceTp(source, config, size, rank), `slice tp ${size} rank ${rank}`);
    }
  const view = {
    'model.layers.1.self_attn.k_proj.weight': [
      [-20, 7],
      [3, 100],
    ],
    'model.embed_tokens.weight': [[1000, 24], null],
    'model.norm.weight': null,
  } as const;
  const out = join(dir, 'view.safetensors');
  const r = await runCli(['slice', model, '--out', out, '--view', JSON.stringify(view)]);
  assert.equal(r.code, 0, r.stderr);
  await assertFileEquals(out, referenceView(source, view), 'slice --view');
});

test('slice: bad input exits 2 and leaves nothing at --out', async (t) => {
  const dir = tempDir(t);
  const out = join(dir, 'x.safetensors');
  const cases: [string[], RegExp][] = [
    [['--view', '{"model.norm.weight": [[0, 999]]}'], /TC_ERR_VIEW_OUT_OF_RANGE/],
    [['--view', '{"nope": null}'], /TC_ERR_VIEW_UNKNOWN_TENSOR/],
    [['--view', '{bad'], /TC_ERR_VIEW_INVALID/],
    [['--tp-size', '4'], /TC_ERR_INVALID_ARGUMENT/],
    [['--tp-size', '3', '--tp-rank', '0'], /TC_ERR_LAYOUT_NOT_DIVISIBLE/],
    [['--tp-size', '2', '--tp-rank', '2'], /TC_ERR_LAYOUT_INVALID_RANK/],
    [['--tp-size', '2', '--tp-rank', '0', '--tp-layout', join(dir, 'missing.json')], /TC_ERR_NOT_FOUND/],
    [['--tensors', 'ghost'], /TC_ERR_VIEW_UNKNOWN_TENSOR/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(['slice', model, '--out', out, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.deepEqual(readdirSync(dir), [], 'nothing written');
  }
  const noOut = await runCli(['slice', model]);
  assert.equal(noOut.code, 2);
  const unwritable = await runCli(['slice', model, '--out', join(dir, 'no', 'such', 'dir', 'x.safetensors')]);
  assert.equal(unwritable.code, 2);
  assert.match(unwritable.stderr, /TC_ERR_NOT_FOUND/);
});

test('slice: a model written by the reference library, sliced per TP rank, equals torch slicing', async (t) => {
  const py = pythonWith(['torch', 'safetensors']);
  if (py === undefined) {
    skipOrFail(t, missingPython(['torch', 'safetensors']));
    return;
  }
  const dir = tempDir(t);
  const ref = join(dir, 'ref');
  const made = spawnSync(py, [fixture('make_reference_model.py'), ref], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  for (const [size, rank] of [
    [1, 0],
    [2, 1],
    [4, 0],
    [4, 3],
    [8, 5],
  ] as const) {
    const out = join(dir, `tp${size}-${rank}.safetensors`);
    const r = await runCli(['slice', ref, '--out', out, '--tp-size', String(size), '--tp-rank', String(rank)]);
    assert.equal(r.code, 0, r.stderr);
    const check: SpawnSyncReturns<string> = spawnSync(py, [fixture('check_slices.py'), ref, out, 'tp', String(rank), String(size)], {
      encoding: 'utf8',
    });
    assert.equal(check.status, 0, `tp ${size} rank ${rank}: ${check.stderr}`);
    assert.match(check.stdout, /^ok 21/);
  }
  const view = {
    'model.layers.1.mlp.up_proj.weight': [
      [3, 100],
      [-50, 40],
    ],
    'lm_head.weight': [[-1, 1], null],
  };
  const out = join(dir, 'view.safetensors');
  assert.equal((await runCli(['slice', ref, '--out', out, '--view', JSON.stringify(view)])).code, 0);
  const viewCheck = spawnSync(py, [fixture('check_slices.py'), ref, out, 'view', JSON.stringify(view)], { encoding: 'utf8' });
  assert.equal(viewCheck.status, 0, viewCheck.stderr);
  assert.ok(existsSync(out));
});

test('slice: a model saved by transformers (save_pretrained, 4 shards) per TP rank equals torch slicing', async (t) => {
  const py = pythonWith(['torch', 'safetensors', 'transformers']);
  if (py === undefined) {
    skipOrFail(t, missingPython(['torch', 'safetensors', 'transformers']));
    return;
  }
  const dir = tempDir(t);
  const ref = join(dir, 'hf');
  const made = spawnSync(py, [fixture('make_transformers_model.py'), ref], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  assert.ok(readdirSync(ref).includes('model.safetensors.index.json'));
  for (const rank of [0, 1]) {
    const out = join(dir, `r${rank}.safetensors`);
    const r = await runCli(['slice', ref, '--out', out, '--tp-size', '2', '--tp-rank', String(rank)]);
    assert.equal(r.code, 0, r.stderr);
    const check: SpawnSyncReturns<string> = spawnSync(py, [fixture('check_slices.py'), ref, out, 'tp', String(rank), '2'], {
      encoding: 'utf8',
    });
    assert.equal(check.status, 0, check.stderr);
  }
});

// SGLang parameter naming and fusion: q/k/v -> qkv_proj and gate/up -> gate_up_proj in stacking order,
// whatever order the tensors come in; tied embeddings under lm_head.weight; rotary buffers dropped; a
// missing part is a coded error; the value is a one-tensor safetensors file without metadata.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSafetensorsHeader } from '../format/safetensors-header.js';
import { SglangParams, sglangValue, type SglangParam } from './sglang-params.js';
import type { WeightTensor } from './weight-stream.js';

const tensor = (name: string, shape: number[], fill: number, dtype: WeightTensor['dtype'] = 'BF16'): WeightTensor => ({
  name,
  dtype,
  shape,
  data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 2).fill(fill),
});

const run = (tied: boolean, tensors: WeightTensor[]): SglangParam[] => {
  const p = new SglangParams({ tieWordEmbeddings: tied });
  const out = tensors.flatMap((t) => p.add(t));
  p.finish();
  return out;
};

test('sglang params: fused q/k/v and gate/up in stacking order, others under their own names', () => {
  const a = 'model.layers.0.self_attn.';
  const m = 'model.layers.0.mlp.';
  const out = run(false, [
    tensor(`${a}v_proj.weight`, [2, 4], 3),
    tensor(`${a}o_proj.weight`, [4, 4], 9),
    tensor(`${a}q_proj.weight`, [4, 4], 1),
    tensor(`${a}k_proj.weight`, [2, 4], 2),
    tensor(`${a}q_proj.bias`, [4], 5),
    tensor(`${a}k_proj.bias`, [2], 6),
    tensor(`${a}v_proj.bias`, [2], 7),
    tensor(`${m}up_proj.weight`, [8, 4], 12),
    tensor(`${m}gate_proj.weight`, [8, 4], 11),
    tensor(`${a}rotary_emb.inv_freq`, [2], 0, 'F32'),
    tensor('model.embed_tokens.weight', [16, 4], 20),
    tensor('lm_head.weight', [16, 4], 21),
  ]);
  assert.deepEqual(
    out.map((p) => [p.name, p.shape]),
    [
      [`${a}o_proj.weight`, [4, 4]],
      [`${a}qkv_proj.weight`, [8, 4]],
      [`${a}qkv_proj.bias`, [8]],
      [`${m}gate_up_proj.weight`, [16, 4]],
      ['model.embed_tokens.weight', [16, 4]],
      ['lm_head.weight', [16, 4]],
    ],
  );
  const qkv = Buffer.concat(out[1]!.parts);
  assert.deepEqual([qkv[0], qkv[4 * 4 * 2], qkv[6 * 4 * 2]], [1, 2, 3]);
  const gateUp = Buffer.concat(out[3]!.parts);
  assert.deepEqual([gateUp[0], gateUp[8 * 4 * 2]], [11, 12]);
});

test('sglang params: tied embeddings become lm_head.weight only (the name SGLang keeps), a checkpoint lm_head is dropped', () => {
  const out = run(true, [tensor('lm_head.weight', [16, 4], 21), tensor('model.embed_tokens.weight', [16, 4], 20)]);
  assert.deepEqual(
    out.map((p) => p.name),
    ['lm_head.weight'],
  );
  assert.equal(out[0]!.parts[0]![0], 20);
});

test('sglang params: a missing or mismatched part is TC_ERR_INVALID_ARGUMENT', () => {
  const p = new SglangParams({ tieWordEmbeddings: false });
  p.add(tensor('model.layers.3.self_attn.q_proj.weight', [4, 4], 1));
  p.add(tensor('model.layers.3.self_attn.k_proj.weight', [2, 4], 1));
  assert.throws(
    () => p.finish(),
    (e: Error & { code?: string }) => e.code === 'TC_ERR_INVALID_ARGUMENT' && /qkv_proj.*v_proj/.test(e.message),
  );
  const q = new SglangParams({ tieWordEmbeddings: false });
  q.add(tensor('model.layers.0.mlp.gate_proj.weight', [8, 4], 1));
  assert.throws(
    () => q.add(tensor('model.layers.0.mlp.up_proj.weight', [8, 2], 1)),
    (e: Error & { code?: string }) => e.code === 'TC_ERR_INVALID_ARGUMENT',
  );
});

test('sglang value: one tensor named tensor_bytes, no metadata, header padded to 8, data = the parts in order', () => {
  const value = sglangValue({ name: 'x', dtype: 'BF16', shape: [3, 2], parts: [new Uint8Array(8).fill(1), new Uint8Array(4).fill(2)] });
  const n = Number(value.readBigUInt64LE(0));
  assert.equal(n % 8, 0);
  const json = value.subarray(8, 8 + n).toString('utf8');
  assert.equal(json.trimEnd(), '{"tensor_bytes":{"dtype":"BF16","shape":[3,2],"data_offsets":[0,12]}}');
  assert.deepEqual([...value.subarray(8 + n)], [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
  assert.equal(parseSafetensorsHeader(value, value.length, 'value').tensors.length, 1);
});

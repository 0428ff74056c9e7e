import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCanonicalIndex, type CanonicalIndex } from './canonical-index.js';
import { compileProgram } from './program.js';
import { modelDimsFromConfig, tpView } from './tp-layout.js';
import { LLAMA_FAMILY_RULES, parseRuleSet } from './tp-rules.js';
import { normalizeView } from './view.js';
import type { Dtype } from '../core/dtypes.js';

const H = 64;
const NH = 8;
const HD = 8;
const I = 96;
const V = 100;

function index(kvHeads: number, fused = false): CanonicalIndex {
  const t = (name: string, shape: number[], dtype: Dtype = 'BF16') => ({
    name,
    dtype,
    shape,
    byteLength: shape.reduce((a, b) => a * b, 1) * 2,
    shard: 0,
    filePosition: 0,
  });
  const attn = fused
    ? [t('model.layers.0.self_attn.qkv_proj.weight', [(NH + 2 * kvHeads) * HD, H])]
    : [
        t('model.layers.0.self_attn.q_proj.weight', [NH * HD, H]),
        t('model.layers.0.self_attn.q_proj.bias', [NH * HD]),
        t('model.layers.0.self_attn.k_proj.weight', [kvHeads * HD, H]),
        t('model.layers.0.self_attn.v_proj.weight', [kvHeads * HD, H]),
      ];
  const mlp = fused
    ? [t('model.layers.0.mlp.gate_up_proj.weight', [2 * I, H])]
    : [t('model.layers.0.mlp.gate_proj.weight', [I, H]), t('model.layers.0.mlp.up_proj.weight', [I, H])];
  return buildCanonicalIndex(
    [
      t('model.embed_tokens.weight', [V, H]),
      t('lm_head.weight', [V, H]),
      t('model.norm.weight', [H]),
      t('model.layers.0.input_layernorm.weight', [H]),
      ...attn,
      t('model.layers.0.self_attn.o_proj.weight', [H, NH * HD]),
      ...mlp,
      t('model.layers.0.mlp.down_proj.weight', [H, I]),
    ],
    [],
  );
}

const dims = (kv: number) =>
  modelDimsFromConfig({ hidden_size: H, num_attention_heads: NH, num_key_value_heads: kv, intermediate_size: I, vocab_size: V });

test('tp layout: column, row, replicated and KV heads split evenly when tp <= kv heads', () => {
  const spec = tpView(index(4), LLAMA_FAMILY_RULES, dims(4), { tpSize: 2, tpRank: 1 });
  assert.deepEqual(spec['model.layers.0.self_attn.q_proj.weight'], [[32, 32], null]);
  assert.deepEqual(spec['model.layers.0.self_attn.q_proj.bias'], [[32, 32]]);
  assert.deepEqual(spec['model.layers.0.self_attn.k_proj.weight'], [[16, 16], null]);
  assert.deepEqual(spec['model.layers.0.self_attn.o_proj.weight'], [null, [32, 32]]);
  assert.deepEqual(spec['model.layers.0.mlp.gate_proj.weight'], [[48, 48], null]);
  assert.deepEqual(spec['model.layers.0.mlp.down_proj.weight'], [null, [48, 48]]);
  assert.equal(spec['model.norm.weight'], null);
  // vocab 100 is padded to 128 first (vLLM): rank 1 holds rows 64..99 and 28 zero rows.
  assert.deepEqual(spec['model.embed_tokens.weight'], { pieces: [[[64, 36], null]], padDim0: 28 });
});

test('tp layout: KV heads replicated when tp > kv heads (shard = rank / replicas)', () => {
  const shards = [0, 1, 2, 3, 4, 5, 6, 7].map(
    (r) => tpView(index(2), LLAMA_FAMILY_RULES, dims(2), { tpSize: 8, tpRank: r })['model.layers.0.self_attn.k_proj.weight'],
  );
  assert.deepEqual(
    shards,
    [0, 0, 0, 0, 1, 1, 1, 1].map((s) => [[s * HD, HD], null]),
  );
  assert.throws(() => tpView(index(3), LLAMA_FAMILY_RULES, dims(3), { tpSize: 4, tpRank: 0 }), {
    code: 'TC_ERR_LAYOUT_NOT_DIVISIBLE',
    message: /k_proj/,
  });
});

test('tp layout: fused qkv_proj and gate_up_proj split per sub-block', () => {
  const idx = index(2, true);
  const spec = tpView(idx, LLAMA_FAMILY_RULES, dims(2), { tpSize: 2, tpRank: 1 });
  // q: 64 rows -> [32, 32]; k: rows 64..80 -> [72, 8]; v: rows 80..96 -> [88, 8]
  assert.deepEqual(spec['model.layers.0.self_attn.qkv_proj.weight'], {
    pieces: [
      [[32, 32], null],
      [[72, 8], null],
      [[88, 8], null],
    ],
    padDim0: 0,
  });
  assert.deepEqual(spec['model.layers.0.mlp.gate_up_proj.weight'], {
    pieces: [
      [[48, 48], null],
      [[144, 48], null],
    ],
    padDim0: 0,
  });
  const view = normalizeView(idx, spec);
  const qkv = view.selections.find((s) => s.tensor.name.endsWith('qkv_proj.weight'))!;
  assert.deepEqual(qkv.shape, [48, H]);
  const program = compileProgram(view);
  assert.ok(program.totalBytes < idx.totalBytes);
});

test('tp layout: uneven vocab is padded vLLM-style; other uneven splits are errors naming the tensor', () => {
  const idx = index(4);
  const d = modelDimsFromConfig({ hidden_size: H, num_attention_heads: NH, num_key_value_heads: 4, intermediate_size: I, vocab_size: V });
  // vocab 100 over 4 ranks: padded to 128, 32 rows per rank; rank 3 holds rows 96..99 and 28 zero rows.
  const last = tpView(idx, LLAMA_FAMILY_RULES, d, { tpSize: 4, tpRank: 3 });
  assert.deepEqual(last['model.embed_tokens.weight'], { pieces: [[[96, 4], null]], padDim0: 28 });
  // vocab 100 over 3 ranks: 128 is not divisible by 3 -> ceil(100/3) = 34 rows per rank (see tp-vocab.test.ts).
  const three = buildCanonicalIndex(
    [{ name: 'lm_head.weight', dtype: 'BF16', shape: [V, 4], byteLength: V * 8, shard: 0, filePosition: 0 }],
    [],
  );
  assert.deepEqual(tpView(three, LLAMA_FAMILY_RULES, d, { tpSize: 3, tpRank: 2 })['lm_head.weight'], {
    pieces: [[[68, 32], null]],
    padDim0: 2,
  });
  const odd = buildCanonicalIndex(
    [{ name: 'lm_head.weight', dtype: 'BF16', shape: [90, 4], byteLength: 720, shard: 0, filePosition: 0 }],
    [],
  );
  const r3 = tpView(odd, LLAMA_FAMILY_RULES, d, { tpSize: 4, tpRank: 3 });
  // 90 rows padded to 128 give 32 per rank: rank 3 starts past the last real row, so it is all padding.
  assert.deepEqual(r3['lm_head.weight'], { pieces: [[[90, 0], null]], padDim0: 32 });
  const r2 = tpView(odd, LLAMA_FAMILY_RULES, d, { tpSize: 4, tpRank: 2 });
  assert.deepEqual(r2['lm_head.weight'], { pieces: [[[64, 26], null]], padDim0: 6 });
  const program = compileProgram(normalizeView(odd, r2));
  assert.equal(program.totalBytes, 32 * 4 * 2);
  assert.deepEqual(program.runs.at(-1), { kind: 'pad', dst: 26 * 8, length: 6 * 8 });
  assert.throws(() => tpView(idx, LLAMA_FAMILY_RULES, d, { tpSize: 5, tpRank: 0 }), {
    code: 'TC_ERR_LAYOUT_NOT_DIVISIBLE',
    message: /down_proj.*96 units.*5 ranks/,
  });
});

test('tp layout: rank checks, missing rules and config values are coded errors', () => {
  const idx = index(4);
  assert.throws(() => tpView(idx, LLAMA_FAMILY_RULES, dims(4), { tpSize: 2, tpRank: 2 }), { code: 'TC_ERR_LAYOUT_INVALID_RANK' });
  assert.throws(() => tpView(idx, LLAMA_FAMILY_RULES, dims(4), { tpSize: 0, tpRank: 0 }), { code: 'TC_ERR_LAYOUT_INVALID_RANK' });
  assert.throws(() => tpView(idx, { name: 'r', rules: [] }, dims(4), { tpSize: 2, tpRank: 0 }), {
    code: 'TC_ERR_LAYOUT_NO_RULE',
    message: /lm_head|model\./,
  });
  assert.throws(() => tpView(idx, LLAMA_FAMILY_RULES, {}, { tpSize: 2, tpRank: 0 }), { code: 'TC_ERR_LAYOUT_CONFIG', message: /head_dim/ });
  const tp1 = tpView(idx, LLAMA_FAMILY_RULES, {}, { tpSize: 1, tpRank: 0 });
  assert.ok(normalizeView(idx, tp1).isIdentity);
});

test('tp rules: user rule sets are validated; first match wins; globs span dots', () => {
  assert.throws(() => parseRuleSet({ rules: [{ pattern: '*', split: 'diagonal' }] }), {
    code: 'TC_ERR_LAYOUT_INVALID_RULES',
    message: /rule 0/,
  });
  assert.throws(() => parseRuleSet({ rules: [{ pattern: '*', split: 'column', blocks: [{ size: 'a+b' }] }] }), {
    code: 'TC_ERR_LAYOUT_INVALID_RULES',
  });
  assert.throws(() => parseRuleSet({ rules: [{ pattern: '*', split: 'column', colour: 1 }] }), {
    code: 'TC_ERR_LAYOUT_INVALID_RULES',
    message: /colour/,
  });
  const rules = parseRuleSet({
    rules: [
      { pattern: '*proj.weight', split: 'row' },
      { pattern: '*', split: 'replicated' },
    ],
  });
  const spec = tpView(index(4), rules, dims(4), { tpSize: 2, tpRank: 0 });
  assert.deepEqual(spec['model.layers.0.mlp.gate_proj.weight'], [null, [0, 32]]);
  assert.equal(spec['lm_head.weight'], null);
});

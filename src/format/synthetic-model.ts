// Writes a Llama-shaped bf16 model (config.json, sharded safetensors, model.safetensors.index.json)
// with deterministic pseudo-random bytes: a stand-in for real checkpoints in tests, benchmarks and the demo.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dtype } from '../core/dtypes.js';
import { saveSafetensors, tensorByteLength, type TensorWithData } from './safetensors-writer.js';

/** Shape of the generated model. */
export interface SyntheticModelOptions {
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly vocabSize: number;
  /** Shards to spread the tensors over (1 writes model.safetensors and no index). */
  readonly shards: number;
  readonly dtype?: Dtype;
  readonly seed?: number;
}

/** A small model that still has every tensor kind of the Llama family. */
export const TINY_LLAMA: SyntheticModelOptions = {
  hiddenSize: 256,
  intermediateSize: 512,
  numLayers: 2,
  numHeads: 8,
  numKvHeads: 2,
  vocabSize: 1024,
  shards: 2,
};

/** Names and shapes of a Llama-family checkpoint. */
export function llamaTensorShapes(o: SyntheticModelOptions): [string, number[]][] {
  const hd = o.hiddenSize / o.numHeads;
  const out: [string, number[]][] = [
    ['model.embed_tokens.weight', [o.vocabSize, o.hiddenSize]],
    ['model.norm.weight', [o.hiddenSize]],
    ['lm_head.weight', [o.vocabSize, o.hiddenSize]],
  ];
  for (let l = 0; l < o.numLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      [`${p}input_layernorm.weight`, [o.hiddenSize]],
      [`${p}post_attention_layernorm.weight`, [o.hiddenSize]],
      [`${p}self_attn.q_proj.weight`, [o.numHeads * hd, o.hiddenSize]],
      [`${p}self_attn.k_proj.weight`, [o.numKvHeads * hd, o.hiddenSize]],
      [`${p}self_attn.v_proj.weight`, [o.numKvHeads * hd, o.hiddenSize]],
      [`${p}self_attn.o_proj.weight`, [o.hiddenSize, o.numHeads * hd]],
      [`${p}mlp.gate_proj.weight`, [o.intermediateSize, o.hiddenSize]],
      [`${p}mlp.up_proj.weight`, [o.intermediateSize, o.hiddenSize]],
      [`${p}mlp.down_proj.weight`, [o.hiddenSize, o.intermediateSize]],
    );
  }
  return out;
}

/** Fills `out` with a cheap deterministic byte pattern (xorshift32 per 4 bytes). */
export function fillPattern(out: Uint8Array, seed: number): void {
  let x = seed >>> 0 || 0x9e3779b9;
  const words = new Uint32Array(out.buffer, out.byteOffset, out.length >>> 2);
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < out.length; i++) out[i] = i & 0xff;
}

/**
 * Writes the model into `dir` (created if needed) and returns its total tensor bytes.
 *
 * @example await writeSyntheticModel('/tmp/tiny', TINY_LLAMA);
 */
export async function writeSyntheticModel(dir: string, o: SyntheticModelOptions): Promise<number> {
  await mkdir(dir, { recursive: true });
  const dtype = o.dtype ?? 'BF16';
  const shapes = llamaTensorShapes(o);
  const total = shapes.reduce((n, [, s]) => n + tensorByteLength(dtype, s), 0);
  const perShard = Math.ceil(total / o.shards);
  const groups: [string, number[]][][] = [[]];
  let inShard = 0;
  for (const entry of shapes) {
    const bytes = tensorByteLength(dtype, entry[1]);
    if (inShard > 0 && inShard + bytes > perShard && groups.length < o.shards) {
      groups.push([]);
      inShard = 0;
    }
    groups[groups.length - 1]!.push(entry);
    inShard += bytes;
  }
  const weightMap: Record<string, string> = {};
  let seed = o.seed ?? 1;
  for (const [i, group] of groups.entries()) {
    const file =
      groups.length === 1
        ? 'model.safetensors'
        : `model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
    const tensors: TensorWithData[] = group.map(([name, shape]) => {
      const data = new Uint8Array(tensorByteLength(dtype, shape));
      fillPattern(data, seed++);
      weightMap[name] = file;
      return { name, dtype, shape, data };
    });
    await saveSafetensors(join(dir, file), tensors, { metadata: { format: 'pt' } });
  }
  if (groups.length > 1) {
    await writeFile(
      join(dir, 'model.safetensors.index.json'),
      `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`,
    );
  }
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: o.hiddenSize,
    intermediate_size: o.intermediateSize,
    num_hidden_layers: o.numLayers,
    num_attention_heads: o.numHeads,
    num_key_value_heads: o.numKvHeads,
    vocab_size: o.vocabSize,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: false,
    torch_dtype: dtype === 'BF16' ? 'bfloat16' : dtype === 'F16' ? 'float16' : 'float32',
  };
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  return total;
}

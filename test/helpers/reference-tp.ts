// An independent reference for what a load or slice must contain, written straight from the TP rules
// (docs/formats.md, vLLM's parallel layers) without src/layout: only the safetensors reader to get the
// source tensors, and naiveSlice to cut boxes element by element. End-to-end tests compare every output
// file and every SDK load with it, so a TP error in the layout, compiler or executor cannot show on both sides.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dtypeBits } from '../../src/core/dtypes.js';
import { readSafetensorsFile } from '../../src/format/safetensors-file.js';
import { naiveSlice } from './naive-slice.js';

/** A tensor: dtype, shape and row-major bytes. */
export interface RefTensor {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/** Tensors by name. */
export type RefTensors = ReadonlyMap<string, RefTensor>;

/** Reads every tensor of a safetensors file or a model directory (all its *.safetensors files). */
export async function readTensors(path: string): Promise<Map<string, RefTensor>> {
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((f) => f.endsWith('.safetensors'))
        .sort()
        .map((f) => join(path, f))
    : [path];
  const out = new Map<string, RefTensor>();
  for (const file of files) {
    const info = await readSafetensorsFile(file);
    const bytes = readFileSync(file);
    for (const t of info.header.tensors) {
      assert.ok(!out.has(t.name), `${t.name} appears twice`);
      out.set(t.name, {
        dtype: t.dtype,
        shape: t.shape,
        data: bytes.subarray(info.header.dataStart + t.begin, info.header.dataStart + t.end),
      });
    }
  }
  return out;
}

type Box = [start: number, length: number][];

/** Rows [start, length] of a dim-0 or dim-1 extent `size` that rank `rank` of `tp` holds in an even split. */
function even(size: number, tp: number, rank: number, what: string): [number, number] {
  assert.equal(size % tp, 0, `reference: ${what}: ${size} does not split over ${tp}`);
  return [rank * (size / tp), size / tp];
}

/** KV heads: split evenly, or replicated when tp > heads (shard = rank / (tp / heads)). */
function kvRows(kvHeads: number, headDim: number, tp: number, rank: number): [number, number] {
  if (tp <= kvHeads) {
    const [h, n] = even(kvHeads, tp, rank, 'kv heads');
    return [h * headDim, n * headDim];
  }
  return [Math.floor(rank / (tp / kvHeads)) * headDim, headDim];
}

/** vLLM VocabParallelEmbedding: vocab padded to 64, padded/tp rows per rank (ceil(vocab/tp) where that fails). */
function vocabRows(vocab: number, tp: number, rank: number): { start: number; length: number; pad: number } {
  const padded = Math.ceil(vocab / 64) * 64;
  const per = padded % tp === 0 ? padded / tp : Math.ceil(vocab / tp);
  const start = Math.min(rank * per, vocab);
  const length = Math.min(per, vocab - start);
  return { start, length, pad: per - length };
}

const bytesPerElement = (dtype: string): number => dtypeBits(dtype as Parameters<typeof dtypeBits>[0]) / 8;

/** Cuts dim-0 row blocks (each [start, length]) of `t` and concatenates them, then `padRows` zero rows. */
function rowBlocks(t: RefTensor, blocks: [number, number][], padRows = 0): RefTensor {
  const rowBytes = (t.shape.slice(1).reduce((a, b) => a * b, 1) * bytesPerElement(t.dtype)) | 0;
  const rows = blocks.reduce((n, [, l]) => n + l, 0) + padRows;
  const data = new Uint8Array(rows * rowBytes);
  let at = 0;
  for (const [s, l] of blocks) {
    data.set(t.data.subarray(s * rowBytes, (s + l) * rowBytes), at);
    at += l * rowBytes;
  }
  return { dtype: t.dtype, shape: [rows, ...t.shape.slice(1)], data };
}

/** Cuts a box out of `t`: element by element when small, else one innermost run at a time. */
export function cutBox(t: RefTensor, box: Box): RefTensor {
  const shape = box.map(([, l]) => l);
  const elem = bytesPerElement(t.dtype);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count < 1 << 16 || t.shape.length === 0) return { dtype: t.dtype, shape, data: naiveSlice(t.data, t.shape, elem, box) };
  const last = t.shape.length - 1;
  const [innerStart, innerLength] = box[last]!;
  const outer = box.slice(0, last);
  const strides = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const data = new Uint8Array(count * elem);
  const idx = outer.map(([s]) => s);
  for (let at = 0; at < data.length; at += innerLength * elem) {
    const src = (idx.reduce((n, v, d) => n + v * strides[d]!, 0) + innerStart) * elem;
    data.set(t.data.subarray(src, src + innerLength * elem), at);
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d]! < outer[d]![0] + outer[d]![1]) break;
      idx[d] = outer[d]![0];
    }
  }
  return { dtype: t.dtype, shape, data };
}

/** The numbers of config.json the rules use. */
export interface RefConfig {
  readonly hidden_size: number;
  readonly num_attention_heads: number;
  readonly num_key_value_heads?: number;
  readonly head_dim?: number;
  readonly intermediate_size: number;
}

/**
 * What rank `rank` of `tp` holds of a Llama-family model, from the rules: q/k/v and gate/up column-parallel
 * (dim 0), o/down row-parallel (dim 1), embeddings and lm_head vocab-parallel padded, norms and biases of
 * row-parallel layers replicated, fused qkv_proj / gate_up_proj split per sub-block.
 */
export function referenceTp(tensors: RefTensors, config: RefConfig, tp: number, rank: number): Map<string, RefTensor> {
  const heads = config.num_attention_heads;
  const kv = config.num_key_value_heads ?? heads;
  const hd = config.head_dim ?? config.hidden_size / heads;
  const inter = config.intermediate_size;
  const out = new Map<string, RefTensor>();
  for (const [name, t] of tensors) {
    const q = (): [number, number] => {
      const [h, n] = even(heads, tp, rank, `${name} q heads`);
      return [h * hd, n * hd];
    };
    const ends = (...s: string[]): boolean => s.some((x) => name.endsWith(x));
    let r: RefTensor;
    if (tp === 1 || ends('norm.weight', 'norm.bias', 'rotary_emb.inv_freq', 'o_proj.bias', 'down_proj.bias')) r = t;
    else if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') {
      const v = vocabRows(t.shape[0]!, tp, rank);
      r = rowBlocks(t, [[v.start, v.length]], v.pad);
    } else if (ends('q_proj.weight', 'q_proj.bias')) r = rowBlocks(t, [q()]);
    else if (ends('k_proj.weight', 'k_proj.bias', 'v_proj.weight', 'v_proj.bias')) r = rowBlocks(t, [kvRows(kv, hd, tp, rank)]);
    else if (ends('qkv_proj.weight', 'qkv_proj.bias')) {
      const [ks, kl] = kvRows(kv, hd, tp, rank);
      const qRows = heads * hd;
      r = rowBlocks(t, [q(), [qRows + ks, kl], [qRows + kv * hd + ks, kl]]);
    } else if (ends('gate_proj.weight', 'gate_proj.bias', 'up_proj.weight', 'up_proj.bias'))
      r = rowBlocks(t, [even(t.shape[0]!, tp, rank, name)]);
    else if (ends('gate_up_proj.weight', 'gate_up_proj.bias')) {
      const [s, l] = even(inter, tp, rank, name);
      r = rowBlocks(t, [
        [s, l],
        [inter + s, l],
      ]);
    } else if (ends('o_proj.weight', 'down_proj.weight')) {
      r = cutBox(
        t,
        t.shape.map((d, i): [number, number] => (i === 1 ? even(d, tp, rank, name) : [0, d])),
      );
    } else throw new Error(`reference: no TP rule for ${name}`);
    out.set(name, r);
  }
  return out;
}

/** A `--view` selection: per tensor a list of [start, length] (negative start counts from the end) or null. */
export type RefView = Readonly<Record<string, readonly (readonly [number, number] | null)[] | null>>;

/** What a view selects: only the named tensors, each cut to its ranges. */
export function referenceView(tensors: RefTensors, view: RefView): Map<string, RefTensor> {
  const out = new Map<string, RefTensor>();
  for (const [name, ranges] of Object.entries(view)) {
    const t = tensors.get(name);
    assert.ok(t !== undefined, `reference: unknown tensor ${name}`);
    const box = t.shape.map((d, i): [number, number] => {
      const r = ranges?.[i] ?? null;
      return r === null ? [0, d] : [r[0] < 0 ? d + r[0] : r[0], r[1]];
    });
    out.set(name, cutBox(t, box));
  }
  return out;
}

/** Only the named tensors, whole. */
export function referenceTensors(tensors: RefTensors, names: readonly string[]): Map<string, RefTensor> {
  return new Map(names.map((n) => [n, tensors.get(n)!]));
}

/** Asserts that a safetensors file holds exactly `want`: same names, dtypes, shapes and bytes. */
export async function assertFileEquals(path: string, want: RefTensors, what: string): Promise<void> {
  assertTensorsEqual(await readTensors(path), want, what);
}

/** Asserts two tensor maps are equal (names, dtypes, shapes, bytes), naming the first difference. */
export function assertTensorsEqual(got: RefTensors, want: RefTensors, what: string): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${what}: tensor names`);
  for (const [name, w] of want) {
    const g = got.get(name)!;
    assert.equal(g.dtype, w.dtype, `${what}: ${name} dtype`);
    assert.deepEqual([...g.shape], [...w.shape], `${what}: ${name} shape`);
    assert.ok(Buffer.from(g.data).equals(Buffer.from(w.data)), `${what}: ${name}: bytes differ from the reference`);
  }
}

/** Reads config.json of a model directory. */
export function readConfig(dir: string): RefConfig {
  return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as RefConfig;
}

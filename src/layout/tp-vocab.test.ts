// Vocab-parallel splits checked against vLLM's rule, written out here independently of tp-layout.ts:
// VocabParallelEmbedding pads the vocab to a multiple of 64 (pad_vocab_size), gives every rank
// padded / tp rows (vocab_range_from_global_vocab_size), clamps the real rows to the vocab and fills the
// rest of the rank with zeros. Where vLLM refuses (padded not divisible by tp), tensorcast's documented
// fallback gives every rank ceil(vocab / tp) rows, the last ranks padded.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCanonicalIndex } from './canonical-index.js';
import { compileProgram, type ByteRangeProgram } from './program.js';
import { modelDimsFromConfig, tpView } from './tp-layout.js';
import { LLAMA_FAMILY_RULES } from './tp-rules.js';
import { normalizeView, type TensorViewSpec } from './view.js';

const HIDDEN = 3;
const ELEM = 2;
const ROW_BYTES = HIDDEN * ELEM;

/** vLLM's rows for one rank: [start, length, zero rows after them]. */
function vllmVocabRows(vocab: number, tp: number, rank: number): [number, number, number] {
  const padded = Math.trunc((vocab + 63) / 64) * 64; // pad_vocab_size(vocab, 64)
  let perRank: number;
  if (padded % tp === 0) perRank = padded / tp;
  else {
    // vLLM asserts here; the fallback: the smallest even split that holds every real row.
    perRank = Math.trunc(vocab / tp) + (vocab % tp === 0 ? 0 : 1);
  }
  const first = Math.min(rank * perRank, vocab);
  const last = Math.min(rank * perRank + perRank, vocab);
  return [first, last - first, perRank - (last - first)];
}

/** Reads [start, length, pad] out of a one-tensor dim-0 split in either spec form. */
function rowsOf(spec: TensorViewSpec | undefined, vocab: number): [number, number, number] {
  if (spec === null || spec === undefined) return [0, vocab, 0];
  if (Array.isArray(spec)) {
    const r = (spec as readonly ([number, number] | null)[])[0];
    return r === null || r === undefined ? [0, vocab, 0] : [r[0], r[1], 0];
  }
  const p = spec as { pieces: readonly (readonly ([number, number] | null)[])[]; padDim0: number };
  assert.equal(p.pieces.length, 1, 'a vocab split is one piece');
  const r = p.pieces[0]![0] ?? [0, vocab];
  return [r[0], r[1], p.padDim0];
}

/** Runs a program over `source` by its documented meaning (the executor lives in src/bytes). */
function runProgram(program: ByteRangeProgram, source: Uint8Array): Uint8Array {
  const out = new Uint8Array(program.totalBytes).fill(0xee);
  for (const r of program.runs) {
    if (r.kind === 'pad') out.fill(0, r.dst, r.dst + r.length);
    else if (r.kind === 'contiguous') out.set(source.subarray(r.src, r.src + r.length), r.dst);
    else
      for (let i = 0; i < r.rows; i++)
        out.set(source.subarray(r.src + i * r.stride, r.src + i * r.stride + r.rowLength), r.dst + i * r.rowLength);
  }
  return out;
}

const CASES: [vocab: number, tps: number[]][] = [
  [97, [2, 3, 4, 5, 6, 7, 8]], // prime
  [101, [2, 3, 4, 8]], // prime
  [193, [2, 3, 4, 8]], // prime: padded 256
  [997, [3, 4, 6, 8]], // prime
  [32003, [2, 3, 4, 8]], // prime, Llama-sized
  [100, [2, 4]], // divisible by tp but not by 64: vLLM still pads to 128 first
  [3, [4, 8]], // vocab < tp
  [5, [8, 3]], // vocab < tp; and padded 64 not divisible by 3
  [1, [2]],
];

test('tp layout: vocab sizes no tp divides get vLLM padded rows per rank, bytes included', () => {
  for (const [vocab, tps] of CASES) {
    const tensor = { name: 'lm_head.weight', dtype: 'BF16' as const, shape: [vocab, HIDDEN], shard: 0, filePosition: 0 };
    const idx = buildCanonicalIndex([{ ...tensor, byteLength: vocab * ROW_BYTES }], []);
    const source = Uint8Array.from({ length: vocab * ROW_BYTES }, (_, i) => (i * 31 + 7) & 0xff);
    const dims = modelDimsFromConfig({ vocab_size: vocab, hidden_size: HIDDEN });
    for (const tp of tps) {
      const covered: number[] = [];
      const sizes = new Set<number>();
      for (let rank = 0; rank < tp; rank++) {
        const what = `vocab ${vocab}, tp ${tp}, rank ${rank}`;
        const want = vllmVocabRows(vocab, tp, rank);
        const spec = tpView(idx, LLAMA_FAMILY_RULES, dims, { tpSize: tp, tpRank: rank })['lm_head.weight'];
        assert.deepEqual(rowsOf(spec, vocab), want, what);
        const program = compileProgram(normalizeView(idx, { 'lm_head.weight': spec ?? null }));
        const out = runProgram(program, source);
        const [start, length, pad] = want;
        const expected = new Uint8Array((length + pad) * ROW_BYTES);
        expected.set(source.subarray(start * ROW_BYTES, (start + length) * ROW_BYTES));
        assert.deepEqual(out, expected, `${what}: bytes`);
        for (let r = start; r < start + length; r++) covered.push(r);
        sizes.add(length + pad);
      }
      // Every real row exactly once, in rank order; every rank the same size.
      assert.deepEqual(
        covered,
        Array.from({ length: vocab }, (_, i) => i),
        `vocab ${vocab}, tp ${tp}: rows covered`,
      );
      assert.equal(sizes.size, 1, `vocab ${vocab}, tp ${tp}: ranks differ in size (${[...sizes].join(', ')})`);
    }
  }
});

test('tp layout: the vocab rule applies to the embedding too, and a vocab multiple of 64 splits plainly', () => {
  const tensor = (name: string, vocab: number) => ({ name, dtype: 'BF16' as const, shape: [vocab, HIDDEN], byteLength: vocab * ROW_BYTES });
  for (const vocab of [128, 32_000]) {
    const idx = buildCanonicalIndex(
      [
        { ...tensor('model.embed_tokens.weight', vocab), shard: 0, filePosition: 0 },
        { ...tensor('lm_head.weight', vocab), shard: 0, filePosition: vocab * ROW_BYTES },
      ],
      [],
    );
    for (const rank of [0, 1, 3]) {
      const spec = tpView(idx, LLAMA_FAMILY_RULES, {}, { tpSize: 4, tpRank: rank });
      const per = vocab / 4;
      assert.deepEqual(spec['model.embed_tokens.weight'], [[rank * per, per], null]);
      assert.deepEqual(spec['lm_head.weight'], [[rank * per, per], null]);
    }
  }
});

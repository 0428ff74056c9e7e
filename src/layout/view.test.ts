import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCanonicalIndex } from './canonical-index.js';
import { compileProgram } from './program.js';
import { ProgramCache } from './program-cache.js';
import { normalizeView, parseViewJson } from './view.js';

const idx = buildCanonicalIndex(
  [
    { name: 'w', dtype: 'F32', shape: [6, 4], byteLength: 96, shard: 0, filePosition: 0 },
    { name: 'b', dtype: 'F32', shape: [6], byteLength: 24, shard: 0, filePosition: 96 },
    { name: 'q', dtype: 'F4', shape: [4, 6], byteLength: 12, shard: 0, filePosition: 120 },
    { name: 's', dtype: 'F64', shape: [], byteLength: 8, shard: 0, filePosition: 132 },
  ],
  [],
);

test('view: negative starts, identity folding and equal ids for equal views', () => {
  const a = normalizeView(idx, { w: [[-2, 2], null] });
  const b = normalizeView(idx, {
    w: [
      [4, 2],
      [0, 4],
    ],
  });
  assert.equal(a.viewId, b.viewId);
  assert.deepEqual(a.selections[0]!.pieces, [
    [
      [4, 2],
      [0, 4],
    ],
  ]);
  assert.notEqual(a.viewId, normalizeView(idx, { w: [[3, 2], null] }).viewId);
  const identity = normalizeView(idx, { w: null, b: [[0, 6]], q: [], s: [] });
  assert.equal(identity.isIdentity, true);
  assert.equal(identity.viewId, undefined);
  assert.equal(normalizeView(idx).isIdentity, true);
  assert.equal(normalizeView(idx, undefined, ['w']).isIdentity, false);
  assert.deepEqual(normalizeView(idx, { w: [[1, 1]] }).selections[0]!.shape, [1, 4]);
});

test('view: range, rank, unknown tensor and malformed specs are coded errors', () => {
  assert.throws(() => normalizeView(idx, { w: [[5, 2], null] }), { code: 'TC_ERR_VIEW_OUT_OF_RANGE', message: /'w'.*dimension 0/ });
  assert.throws(() => normalizeView(idx, { w: [[-7, 1]] }), { code: 'TC_ERR_VIEW_OUT_OF_RANGE' });
  assert.throws(() => normalizeView(idx, { w: [null, null, null] }), { code: 'TC_ERR_VIEW_RANK_MISMATCH' });
  assert.throws(() => normalizeView(idx, { nope: null }), { code: 'TC_ERR_VIEW_UNKNOWN_TENSOR', message: /nope/ });
  assert.throws(() => normalizeView(idx, { w: null }, ['b']), { code: 'TC_ERR_VIEW_INVALID' });
  assert.throws(() => parseViewJson('{"w": [[0]]}'), { code: 'TC_ERR_VIEW_INVALID' });
  assert.throws(() => parseViewJson('{"w": [[0, 1.5]]}'), { code: 'TC_ERR_VIEW_INVALID' });
  assert.throws(() => parseViewJson('[1]'), { code: 'TC_ERR_VIEW_INVALID' });
  assert.throws(() => parseViewJson('{"w": '), { code: 'TC_ERR_VIEW_INVALID' });
  assert.deepEqual(parseViewJson('{"w": [[0, 1], null], "b": null, "q": {"pieces": [[[0, 1]]], "padDim0": 2}}'), {
    w: [[0, 1], null],
    b: null,
    q: { pieces: [[[0, 1]]], padDim0: 2 },
  });
});

test('program: sub-byte dtypes slice on byte boundaries only', () => {
  // q: F4 [4, 6]: a row is 3 bytes. Rows 1..3 -> bytes 3..9, one contiguous run.
  const rows = compileProgram(normalizeView(idx, { q: [[1, 2], null] }));
  assert.deepEqual(rows.runs, [{ kind: 'contiguous', dst: 0, src: idx.byName.get('q')!.offset + 3, length: 6 }]);
  // Columns 2..6 (4 elements = 2 bytes) from element 2 (byte 1): strided.
  const cols = compileProgram(normalizeView(idx, { q: [null, [2, 4]] }));
  assert.deepEqual(cols.runs, [{ kind: 'strided', dst: 0, src: idx.byName.get('q')!.offset + 1, rowLength: 2, stride: 3, rows: 4 }]);
  assert.throws(() => compileProgram(normalizeView(idx, { q: [null, [1, 2]] })), { code: 'TC_ERR_VIEW_MISALIGNED', message: /'q'/ });
  assert.throws(() => compileProgram(normalizeView(idx, { q: [null, [0, 3]] })), { code: 'TC_ERR_VIEW_MISALIGNED' });
});

test('program: dim-0 slices are one contiguous run; output order is the safetensors writer order', () => {
  const p = compileProgram(normalizeView(idx, { w: [[2, 3], null], s: null, b: [[1, 2]] }));
  assert.deepEqual(
    p.tensors.map((t) => [t.name, t.offset, t.byteLength]),
    [
      ['s', 0, 8],
      ['b', 8, 8],
      ['w', 16, 48],
    ],
  );
  assert.equal(p.runs.filter((r) => r.kind !== 'contiguous').length, 0);
  assert.equal(p.sourceBytes, 64);
});

test('program cache: bounded LRU keyed by index hash and view id', () => {
  const cache = new ProgramCache(2);
  const v1 = normalizeView(idx, { w: [[0, 1]] });
  const p1 = cache.get(v1);
  assert.equal(cache.get(normalizeView(idx, { w: [[0, 1], null] })), p1);
  cache.get(normalizeView(idx, { w: [[1, 1]] }));
  cache.get(normalizeView(idx));
  assert.equal(cache.size, 2);
  assert.notEqual(cache.get(v1), p1);
  assert.deepEqual([cache.hits, cache.misses], [1, 4]);
});

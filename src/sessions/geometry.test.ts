// The KV geometry: its compatibility hash is stable (the same across runs, releases and processes: sessions
// outlive processes) and changes with every field; invalid geometries are refused naming the field.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytesPerToken, checkGeometry, geometryHash, type SessionGeometry } from './geometry.js';

const LLAMA: SessionGeometry = {
  modelId: 'meta-llama/Llama-3.1-8B',
  layers: 32,
  kvHeads: 8,
  headDim: 128,
  dtype: 'BF16',
  tokensPerPage: 16,
};

test('geometry: the hash is stable and kvFactor defaults to 2', () => {
  // Pinned values: a change here breaks every stored session's compatibility check.
  assert.equal(geometryHash(LLAMA), 'c04051357b36b6c2c987cd117fb9992f');
  assert.equal(geometryHash({ ...LLAMA, kvFactor: 2 }), geometryHash(LLAMA));
  // Field order of the caller's object does not matter.
  const reordered = JSON.parse(
    JSON.stringify({ tokensPerPage: 16, dtype: 'BF16', headDim: 128, kvHeads: 8, layers: 32, modelId: LLAMA.modelId }),
  ) as SessionGeometry;
  assert.equal(geometryHash(reordered), geometryHash(LLAMA));
  assert.match(geometryHash(LLAMA), /^[0-9a-f]{32}$/);
});

test('geometry: every field changes the hash', () => {
  const variants: SessionGeometry[] = [
    { ...LLAMA, modelId: 'meta-llama/Llama-3.1-70B' },
    { ...LLAMA, layers: 31 },
    { ...LLAMA, kvHeads: 4 },
    { ...LLAMA, headDim: 64 },
    { ...LLAMA, dtype: 'F16' },
    { ...LLAMA, tokensPerPage: 32 },
    { ...LLAMA, kvFactor: 1 },
  ];
  const hashes = new Set([geometryHash(LLAMA), ...variants.map(geometryHash)]);
  assert.equal(hashes.size, variants.length + 1);
});

test('geometry: bytes per token', () => {
  assert.equal(bytesPerToken(LLAMA), 32 * 2 * 8 * 128 * 2);
  assert.equal(bytesPerToken({ ...LLAMA, kvFactor: 1, dtype: 'F32' }), 32 * 8 * 128 * 4);
});

test('geometry: invalid geometries are TC_ERR_INVALID_ARGUMENT naming the field', () => {
  const cases: [unknown, RegExp][] = [
    [null, /object/],
    [{ ...LLAMA, modelId: '' }, /modelId/],
    [{ ...LLAMA, modelId: 'x'.repeat(257) }, /modelId/],
    [{ ...LLAMA, layers: 0 }, /layers/],
    [{ ...LLAMA, kvHeads: 1.5 }, /kvHeads/],
    [{ ...LLAMA, headDim: -1 }, /headDim/],
    [{ ...LLAMA, tokensPerPage: 2 ** 21 }, /tokensPerPage/],
    [{ ...LLAMA, dtype: 'F128' }, /dtype/],
    [{ ...LLAMA, kvFactor: 3 }, /kvFactor/],
    [{ ...LLAMA, dtype: 'F4', layers: 1, kvHeads: 1, headDim: 1, kvFactor: 1 }, /whole bytes/],
  ];
  for (const [g, message] of cases) {
    assert.throws(() => checkGeometry(g as SessionGeometry), { code: 'TC_ERR_INVALID_ARGUMENT', message }, JSON.stringify(g));
    assert.throws(() => geometryHash(g as SessionGeometry), { code: 'TC_ERR_INVALID_ARGUMENT' });
  }
});

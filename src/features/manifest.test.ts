import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeManifest, encodeManifest, type SampleManifest } from './manifest.js';
import { checkSampleId, checkTensorName, parseSampleKey, sampleKeys, specsFromTensors } from './sample-ref.js';

const good: SampleManifest = {
  v: 1,
  sampleId: 's-1',
  generation: 3,
  layout: 'per-tensor',
  specs: [
    { name: 'a', dtype: 'F32', shape: [2, 3], byteLength: 24 },
    { name: 'b', dtype: 'F4', shape: [4], byteLength: 2 },
  ],
  fences: [7, 9],
  createdAt: 1_700_000_000_000,
};

test('manifest: encode/decode round-trips; damaged manifests are TC_ERR_BACKEND naming the key', () => {
  assert.deepEqual(decodeManifest(encodeManifest(good), 'k'), good);
  const noFences: SampleManifest = {
    v: 1,
    sampleId: good.sampleId,
    generation: 3,
    layout: 'per-tensor',
    specs: good.specs,
    createdAt: good.createdAt,
  };
  assert.deepEqual(decodeManifest(encodeManifest(noFences), 'k'), noFences);
  const bad = (o: unknown): Uint8Array => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o));
  for (const m of [
    'not json',
    '[]',
    'null',
    { ...good, v: 2 },
    { ...good, extra: 1 },
    { ...good, sampleId: 'a/b' },
    { ...good, generation: -1 },
    { ...good, generation: 1.5 },
    { ...good, layout: 'zip' },
    { ...good, createdAt: 'now' },
    { ...good, specs: [] },
    { ...good, specs: [{ ...good.specs[0], byteLength: 25 }] },
    { ...good, specs: [good.specs[0], good.specs[0]] },
    { ...good, specs: [{ ...good.specs[0], dtype: 'F99' }] },
    { ...good, fences: [1] },
    { ...good, fences: [1, ''] },
    { ...good, layout: 'packed' },
  ]) {
    assert.throws(
      () => decodeManifest(bad(m), 'train/s-1/manifest'),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'TC_ERR_BACKEND', JSON.stringify(m));
        assert.match(e.message, /train\/s-1\/manifest/);
        return true;
      },
    );
  }
});

test('manifest: random bytes and random JSON values decode or fail with TC_ERR_BACKEND only', () => {
  const only = (bytes: Uint8Array): void => {
    try {
      decodeManifest(bytes, 'k');
    } catch (error) {
      assert.equal((error as { code?: string }).code, 'TC_ERR_BACKEND', (error as Error).message);
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), only), { numRuns: 500 });
  fc.assert(
    fc.property(fc.jsonValue(), (v) => only(Buffer.from(JSON.stringify(v) ?? 'null'))),
    { numRuns: 500 },
  );
  // Mutations of a good manifest: one field replaced by any JSON value.
  fc.assert(
    fc.property(fc.constantFrom(...Object.keys(good)), fc.jsonValue(), (field, value) =>
      only(Buffer.from(JSON.stringify({ ...good, [field]: value }))),
    ),
    { numRuns: 500 },
  );
});

test('sample ids, tensor names and keys', () => {
  for (const ok of ['s', 's-1', 'A_b.c', '0', 'x'.repeat(200)]) assert.equal(checkSampleId(ok), ok);
  for (const bad of ['', '.', '..', '.x', 'a/b', 'a b', 'x'.repeat(201), 7, null]) {
    assert.throws(() => checkSampleId(bad), { code: 'TC_ERR_INVALID_ARGUMENT' }, String(bad));
  }
  for (const ok of ['hidden', 'model.layers.0.weight', 'a:b', 'x+y=z', 'a@b,c']) assert.equal(checkTensorName(ok), ok);
  for (const bad of ['', 'a/b', '.x', 'a\u0000', 'a b', 'é'])
    assert.throws(() => checkTensorName(bad), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.deepEqual(parseSampleKey('t', sampleKeys.tensor('t', 's', 12, 'x.y')), { sampleId: 's', kind: 'tensor', generation: 12 });
  assert.deepEqual(parseSampleKey('t', sampleKeys.packed('t', 's', 3)), { sampleId: 's', kind: 'packed', generation: 3 });
  assert.deepEqual(parseSampleKey('t', sampleKeys.manifest('t', 's')), { sampleId: 's', kind: 'manifest' });
  for (const other of ['u/s/manifest', 't/s', 't/s/g1', 't/s/gx/y', 't/s/g1/y/z', 't/.s/manifest'])
    assert.equal(parseSampleKey('t', other), undefined);
  // Specs come out in name order (UTF-8 bytes), with shape x dtype checked against the data.
  const specs = specsFromTensors({
    b: { data: new Uint8Array(4), dtype: 'F32', shape: [] },
    A: { data: new Uint8Array(0), dtype: 'BF16', shape: [3, 0] },
  });
  assert.deepEqual(
    specs.map((s) => [s.name, s.byteLength]),
    [
      ['A', 0],
      ['b', 4],
    ],
  );
});

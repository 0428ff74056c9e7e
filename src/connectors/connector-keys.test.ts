import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { checkListPrefix, checkObjectKey, splitRange } from './connector-keys.js';

test('object keys: the shared grammar', () => {
  for (const key of ['a', 'model-00001-of-00004.safetensors', 'dir/sub/x.json', '.hidden', '...', 'sp ace', 'ü/😀', 'x'.repeat(1024)]) {
    assert.doesNotThrow(() => checkObjectKey(key), key);
  }
  for (const key of ['', '/abs', 'a/', 'a//b', '.', '..', 'a/../b', './a', 'tab\tkey', 'del\u007f', 'x'.repeat(1025), 'é'.repeat(513)]) {
    assert.throws(() => checkObjectKey(key), { code: 'TC_ERR_INVALID_ARGUMENT' }, JSON.stringify(key));
  }
  for (const prefix of ['', 'a', 'a/', 'dir/sub/', 'model-000']) assert.doesNotThrow(() => checkListPrefix(prefix), prefix);
  for (const prefix of ['/', '/a', '../', 'a//', 'a/./'])
    assert.throws(() => checkListPrefix(prefix), { code: 'TC_ERR_INVALID_ARGUMENT' }, prefix);
});

test('splitRange: parts are contiguous, cover the range, stay within aligned blocks', () => {
  assert.deepEqual(splitRange(10, 20, 8), [
    { offset: 10, length: 6, at: 0 },
    { offset: 16, length: 8, at: 6 },
    { offset: 24, length: 6, at: 14 },
  ]);
  assert.deepEqual(splitRange(5, 0, 8), []);
  fc.assert(
    fc.property(fc.nat(10_000), fc.nat(10_000), fc.integer({ min: 1, max: 3000 }), (offset, length, block) => {
      const parts = splitRange(offset, length, block);
      let at = 0;
      for (const p of parts) {
        assert.equal(p.at, at);
        assert.equal(p.offset, offset + at);
        assert.ok(p.length > 0 && Math.floor(p.offset / block) === Math.floor((p.offset + p.length - 1) / block));
        at += p.length;
      }
      assert.equal(at, length);
    }),
  );
});

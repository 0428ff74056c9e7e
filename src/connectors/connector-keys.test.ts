import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkListPrefix, checkObjectKey } from './connector-keys.js';

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

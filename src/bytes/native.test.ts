import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from './native.js';

test('native: a file descriptor beyond an int is refused, not wrapped onto another fd', { skip: native === undefined }, () => {
  // 2^32 + 1 would be fd 1 (stdout) once cut to an int.
  assert.throws(() => native!.gatherFile(2 ** 32 + 1, 0, 1, 1, 1, new Uint8Array(1), 0), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => native!.gatherFile(-1, 0, 1, 1, 1, new Uint8Array(1), 0), { code: 'TC_ERR_INVALID_ARGUMENT' });
});

// Path parameters and identifier headers of handshake requests: what passes, and the code of what does not.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineIdParam, idHeader, rankAddress, rankParam } from './request-checks.js';

test('engine ids and ranks from the path', () => {
  assert.equal(engineIdParam('prefill-0.a:b@c+d_e'), 'prefill-0.a:b@c+d_e');
  assert.equal(engineIdParam('e'.repeat(128)), 'e'.repeat(128));
  for (const bad of ['', 'e'.repeat(129), 'a b', 'a/b', 'é', undefined, 7]) {
    assert.throws(() => engineIdParam(bad), { code: 'TC_ERR_INVALID_ARGUMENT' }, String(bad));
  }
  assert.equal(rankParam('tpRank', '0'), 0);
  assert.equal(rankParam('tpRank', '4095'), 4095);
  assert.equal(rankParam('dpRank', '007'), 7);
  for (const bad of ['4096', '-1', '1.0', '1e3', '', ' 1', '0x1', '99999', undefined]) {
    assert.throws(() => rankParam('dpRank', bad), { code: 'TC_ERR_INVALID_ARGUMENT' }, String(bad));
  }
  assert.deepEqual(rankAddress({ engineId: 'e', tpRank: '3', dpRank: '1' }), { engineId: 'e', tpRank: 3, dpRank: 1 });
  assert.throws(() => rankAddress(undefined), { code: 'TC_ERR_INVALID_ARGUMENT' });
});

test('identifier headers: required or optional, never invalid or repeated', () => {
  const h = { 'x-a': 'hash-1', 'x-bad': 'has space', 'x-twice': ['a', 'b'] };
  assert.equal(idHeader(h, 'x-a', true), 'hash-1');
  assert.equal(idHeader(h, 'x-missing', false), undefined);
  assert.throws(() => idHeader(h, 'x-missing', true), { code: 'TC_ERR_MALFORMED' });
  assert.throws(() => idHeader(h, 'x-bad', false), { code: 'TC_ERR_MALFORMED' });
  assert.throws(() => idHeader(h, 'x-twice', false), { code: 'TC_ERR_MALFORMED' });
});

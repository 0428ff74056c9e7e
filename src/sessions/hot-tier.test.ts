// The hot tier's accounting: reservations never pass the budget, and buffers kept for reuse never make the
// memory held (reserved + pooled) pass it either.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HotTier } from './hot-tier.js';

test('hot tier: reservations stay within the budget', () => {
  const hot = new HotTier(100);
  assert.equal(hot.tryReserve(60), true);
  assert.equal(hot.tryReserve(41), false);
  assert.equal(hot.bytes, 60);
  assert.equal(hot.tryReserve(40), true);
  hot.release(100);
  assert.equal(hot.bytes, 0);
  assert.throws(() => hot.release(1), { code: 'TC_ERR_INTERNAL' });
  assert.throws(() => new HotTier(-1), { code: 'TC_ERR_INVALID_ARGUMENT' });
});

test('hot tier: a released buffer is handed out again for the same length, pooled bytes are dropped to fit', () => {
  const hot = new HotTier(100);
  assert.ok(hot.tryReserve(40));
  const a = hot.allocate(40);
  hot.release(40, a);
  assert.ok(hot.tryReserve(40));
  assert.equal(hot.allocate(40), a, 'reused');
  hot.release(40, a);
  // 70 reserved + 40 pooled would hold 110 > 100: allocating drops the pooled buffer.
  assert.ok(hot.tryReserve(70));
  const b = hot.allocate(70);
  assert.notEqual(b.buffer, a.buffer);
  hot.release(70, b);
  assert.ok(hot.tryReserve(40));
  assert.notEqual(hot.allocate(40), a, 'a was dropped from the pool');
});

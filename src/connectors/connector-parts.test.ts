import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { forEachBounded, splitRange } from './connector-parts.js';

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

test('forEachBounded: bounded, and after a failure nothing starts and everything running settles first', async () => {
  let running = 0;
  let most = 0;
  await forEachBounded([...Array(20).keys()], 3, async () => {
    most = Math.max(most, ++running);
    await sleep(1);
    running--;
  });
  assert.equal(most, 3);
  const started: number[] = [];
  const settled: number[] = [];
  await assert.rejects(
    forEachBounded([...Array(20).keys()], 4, async (i, signal) => {
      started.push(i);
      if (i === 1) throw new Error('part 1 failed');
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      await sleep(5);
      settled.push(i);
    }),
    /part 1 failed/,
  );
  assert.deepEqual(started, [0, 1, 2, 3]);
  assert.deepEqual(settled.sort(), [0, 2, 3]);
  const outer = new AbortController();
  outer.abort();
  await assert.rejects(
    forEachBounded([1], 1, (_i, signal) => (signal.aborted ? Promise.reject(new Error('aborted')) : Promise.resolve()), outer.signal),
    /aborted/,
  );
});

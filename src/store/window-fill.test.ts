import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WINDOW_BYTES, WindowFill } from './window-fill.js';

test('window fill: each window is filled once by concurrent readers; a failed window is retried', async () => {
  const fills: number[] = [];
  let failNext = true;
  const fill = new WindowFill(3 * WINDOW_BYTES + 10, async (start) => {
    await new Promise((r) => setTimeout(r, 5));
    if (start === WINDOW_BYTES && failNext) {
      failNext = false;
      throw new Error('disk hiccup');
    }
    fills.push(start / WINDOW_BYTES);
  });
  const readers = await Promise.allSettled([fill.ready(0, 10), fill.ready(5, WINDOW_BYTES + 1), fill.ready(0, WINDOW_BYTES)]);
  assert.deepEqual(
    readers.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  await fill.ready(0, 3 * WINDOW_BYTES + 10);
  assert.deepEqual(fills.sort(), [0, 1, 2, 3]);
  await fill.ready(0, 3 * WINDOW_BYTES + 10);
  assert.equal(fills.length, 4, 'filled windows are not filled again');
});

test('window fill: a reader waiting on a window stops at its deadline with TC_ERR_TIMEOUT', async () => {
  let release: () => void = () => undefined;
  const fill = new WindowFill(WINDOW_BYTES, () => new Promise<void>((r) => (release = r)));
  const first = fill.ready(0, 10, Date.now() + 20);
  await assert.rejects(first, { code: 'TC_ERR_TIMEOUT' });
  await assert.rejects(fill.ready(0, 10, Date.now() + 20), { code: 'TC_ERR_TIMEOUT' });
  release();
  await fill.ready(0, 10, Date.now() + 1000);
});

test('window fill: filled() is true only for ranges whose windows are all filled', async () => {
  const fill = new WindowFill(2 * WINDOW_BYTES + 10, () => Promise.resolve());
  assert.equal(fill.filled(0, 10), false);
  await fill.ready(5, 10);
  assert.equal(fill.filled(0, WINDOW_BYTES), true);
  assert.equal(fill.filled(0, WINDOW_BYTES + 1), false);
  await fill.ready(2 * WINDOW_BYTES, 2 * WINDOW_BYTES + 10);
  assert.equal(fill.filled(2 * WINDOW_BYTES + 3, 2 * WINDOW_BYTES + 10), true);
  assert.equal(fill.filled(0, 2 * WINDOW_BYTES + 10), false);
});

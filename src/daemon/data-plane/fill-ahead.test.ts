import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tcError } from '../../core/errors.js';
import { FillAhead, type Fillable } from './fill-ahead.js';

/** A holder whose pieces fill when the test releases them; records the order fills were asked for. */
function holder(): Fillable & { asked: number[]; release: (start: number, error?: Error) => void; settled: Set<number> } {
  const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  const asked: number[] = [];
  const settled = new Set<number>();
  return {
    asked,
    settled,
    ready: (start) => {
      asked.push(start);
      return new Promise<void>((resolve, reject) => waiting.set(start, { resolve, reject })).finally(() => settled.add(start));
    },
    release: (start, error) => {
      const w = waiting.get(start)!;
      if (error === undefined) w.resolve();
      else w.reject(error);
    },
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('fill ahead: the next pieces are asked for while the current one is still filling', async () => {
  const h = holder();
  const fill = new FillAhead(h, 50, 450, { pieceBytes: 100, ahead: 2, deadline: Date.now() + 5000 });
  const first = fill.until(50, 100);
  await tick();
  assert.deepEqual(h.asked, [50, 100, 200], 'piece 0 and the two after it, before piece 0 is filled');
  h.release(50);
  await first;
  const second = fill.until(100, 200);
  await tick();
  assert.deepEqual(h.asked, [50, 100, 200, 300]);
  h.release(100);
  await second;
  for (const p of [200, 300]) h.release(p);
  const rest = fill.until(200, 450);
  await tick();
  assert.deepEqual(h.asked, [50, 100, 200, 300, 400], 'never past the end of the range');
  h.release(400);
  await rest;
  await fill.settle();
});

test('fill ahead: a piece that fails fails the wait that reaches it (with its code), not an earlier one', async () => {
  const h = holder();
  const fill = new FillAhead(h, 0, 300, { pieceBytes: 100, ahead: 2, deadline: Date.now() + 5000 });
  const first = fill.until(0, 100);
  await tick();
  h.release(200, tcError('TC_ERR_IO', 'disk error'));
  h.release(0);
  await first;
  h.release(100);
  await fill.until(100, 200);
  await assert.rejects(fill.until(200, 300), { code: 'TC_ERR_IO' });
});

test('fill ahead: settle() waits for every fill asked for ahead, even when the sender stopped early', async () => {
  const h = holder();
  const fill = new FillAhead(h, 0, 1000, { pieceBytes: 100, ahead: 3, deadline: Date.now() + 5000 });
  const first = fill.until(0, 100);
  await tick();
  h.release(0);
  await first;
  let settled = false;
  const settling = fill.settle().then(() => (settled = true));
  await tick();
  assert.equal(settled, false, 'fills asked for ahead are still running');
  for (const p of [100, 200, 300]) h.release(p, p === 200 ? tcError('TC_ERR_IO', 'x') : undefined);
  await settling;
  assert.deepEqual(
    [...h.settled].sort((a, b) => a - b),
    [0, 100, 200, 300],
  );
});

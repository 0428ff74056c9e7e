// The offline policies of the sessions benchmark on small traces whose answers are known.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeTrace, simulate, workingSet, type Turn } from './session-trace.js';

const turn = (session: number, prefixBytes: number, appendBytes = 1): Turn => ({ session, prefixBytes, appendBytes });

test('session trace: LRU and MIN on a cyclic trace (LRU misses every time, MIN keeps what fits)', () => {
  // Three sessions of 10 bytes each, visited a b c a b c ..., a budget of two sessions.
  const trace: Turn[] = [turn(0, 0, 10), turn(1, 0, 10), turn(2, 0, 10)];
  for (let r = 0; r < 4; r++) for (const s of [0, 1, 2]) trace.push(turn(s, 10, 0));
  const lru = simulate(trace, 20, 'lru');
  const min = simulate(trace, 20, 'min');
  assert.equal(lru.reads, 12);
  assert.equal(lru.hits, 0);
  assert.ok(min.hits >= 6, `MIN hits ${min.hits}`);
  assert.ok(min.swapInBytes < lru.swapInBytes);
});

test('session trace: everything fits: only cold starts miss', () => {
  const trace = makeTrace({ sessions: 5, turns: 200, zipf: 1, minTokens: 1, maxTokens: 4, bytesPerToken: 8, seed: 7 });
  const all = workingSet(trace);
  for (const policy of ['lru', 'min'] as const) {
    const r = simulate(trace, all, policy);
    assert.equal(r.hits, r.reads, policy);
    assert.equal(r.swapInBytes, 0, policy);
  }
});

test('session trace: MIN never does worse than LRU on random traces', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const trace = makeTrace({ sessions: 30, turns: 400, zipf: 0.9, minTokens: 1, maxTokens: 16, bytesPerToken: 4, seed });
    for (const f of [0.1, 0.25, 0.5]) {
      const budget = Math.floor(workingSet(trace) * f);
      const lru = simulate(trace, budget, 'lru');
      const min = simulate(trace, budget, 'min');
      assert.ok(min.hits >= lru.hits, `seed ${seed} budget ${f}: MIN ${min.hits} < LRU ${lru.hits}`);
    }
  }
});

// The acceptance property of the session cache (issue 13, tests): 200 sessions, random appends (whole tokens,
// random sizes, Zipf-like popularity) totalling 5x the hot budget, interleaved reads of random ranges and a
// few truncates, by four concurrent workers. Every read is checked byte for byte against a model kept here;
// after every operation the hot tier holds at most its budget; at the end every session reads back whole,
// gc finds no orphan, and closing every session leaves the cold tier empty.

import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { Connector } from '../../src/connectors/connector.js';
import { createConnector } from '../../src/connectors/create-connector.js';
import { SESSIONS_PREFIX } from '../../src/sessions/cold-objects.js';
import { createSessionCache } from '../../src/sessions/session-cache.js';
import { BPT, GEOMETRY } from '../helpers/session-fixtures.js';

/** Options of one run. */
export interface CachePropertyOptions {
  readonly cold: string;
  readonly meta: string;
  readonly sessions?: number;
  readonly budgetTokens?: number;
  readonly seed?: number;
}

/** A seeded xorshift32 generator: numbers in [0, 1). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Fresh random bytes of `tokens` tokens. */
function randomKv(next: () => number, tokens: number): Buffer {
  const out = Buffer.allocUnsafe(tokens * BPT);
  for (let i = 0; i < out.length; i += 4) out.writeUInt32LE(Math.floor(next() * 2 ** 32), i);
  return out;
}

/** Runs the property; fails with the seed in the message. */
export async function runCacheProperty(t: TestContext, options: CachePropertyOptions): Promise<void> {
  const seed = options.seed ?? Date.now() & 0x7fffffff;
  const sessions = options.sessions ?? 200;
  const budgetBytes = (options.budgetTokens ?? 1024) * BPT;
  const cache = await createSessionCache({ hot: { budgetBytes }, cold: options.cold, meta: options.meta });
  t.after(() => cache.shutdown());
  const cold: Connector = await createConnector(options.cold);
  t.after(() => cold.close());
  const ids = Array.from({ length: sessions }, (_, i) => `p-${String(i).padStart(3, '0')}`);
  const model = new Map<string, Buffer>(ids.map((id) => [id, Buffer.alloc(0)]));
  for (const id of ids) await cache.create({ sessionId: id, geometry: GEOMETRY });
  // Zipf-like popularity: session i is chosen with weight 1/(i+1).
  const weights = ids.map((_, i) => 1 / (i + 1));
  let appended = 0;
  let reads = 0;
  let truncates = 0;
  let maxHot = 0;
  const target = 5 * budgetBytes;
  const checkHot = async (): Promise<void> => {
    const s = await cache.stats();
    maxHot = Math.max(maxHot, s.hotBytes);
    assert.ok(s.hotBytes <= budgetBytes, `seed ${seed}: hot bytes ${s.hotBytes} over the budget ${budgetBytes}`);
  };
  const worker = async (w: number): Promise<void> => {
    const next = rng(seed + w * 7919);
    const mine = ids.filter((_, i) => i % 4 === w);
    const myWeights = mine.map((id) => weights[ids.indexOf(id)]!);
    const myTotal = myWeights.reduce((a, b) => a + b, 0);
    const pick = (): string => {
      let r = next() * myTotal;
      for (let i = 0; i < mine.length; i++) {
        r -= myWeights[i]!;
        if (r <= 0) return mine[i]!;
      }
      return mine[mine.length - 1]!;
    };
    while (appended < target) {
      const id = next() < 0.5 ? pick() : mine[Math.floor(next() * mine.length)]!;
      const have = model.get(id)!;
      const tokens = have.length / BPT;
      const op = next();
      if (op < 0.4 || tokens === 0) {
        const kv = randomKv(next, 1 + Math.floor(next() * 48));
        const r = await cache.append(id, tokens, kv);
        assert.equal(r.tokens, tokens + kv.length / BPT, `seed ${seed}`);
        model.set(id, Buffer.concat([have, kv]));
        appended += kv.length;
      } else if (op < 0.97) {
        const a = Math.floor(next() * tokens);
        const b = a + 1 + Math.floor(next() * (tokens - a));
        const into = Buffer.alloc((b - a) * BPT);
        await cache.read(id, { tokenStart: a, tokenEnd: b }, { into });
        assert.ok(into.equals(have.subarray(a * BPT, b * BPT)), `seed ${seed}: ${id} tokens ${a}..${b} differ from what was appended`);
        reads++;
      } else {
        const end = Math.floor(next() * tokens);
        const st = await cache.truncate(id, end);
        assert.equal(st.tokens, end);
        model.set(id, have.subarray(0, end * BPT));
        truncates++;
      }
      await checkHot();
    }
  };
  await Promise.all([0, 1, 2, 3].map(worker));
  // Truncates are 3% of the operations: a seed may draw none, so one is made here (the coverage check below).
  const cut = truncates === 0 ? ids.find((id) => model.get(id)!.length > BPT) : undefined;
  if (cut !== undefined) {
    const end = Math.floor(model.get(cut)!.length / BPT / 2);
    assert.equal((await cache.truncate(cut, end)).tokens, end);
    model.set(cut, model.get(cut)!.subarray(0, end * BPT));
    truncates++;
    await checkHot();
  }
  for (const id of ids) {
    const want = model.get(id)!;
    const st = await cache.stat(id);
    assert.equal(st.tokens * BPT, want.length, `seed ${seed}: ${id} token count`);
    if (want.length === 0) continue;
    const into = Buffer.alloc(want.length);
    await cache.read(id, { tokenStart: 0, tokenEnd: st.tokens }, { into });
    assert.ok(into.equals(want), `seed ${seed}: ${id} differs at the end`);
    await checkHot();
  }
  const stats = await cache.stats();
  assert.ok(stats.swapsOut > 0 && stats.swapsIn > 0, `seed ${seed}: the run should have swapped (${JSON.stringify(stats)})`);
  assert.ok(reads > 0 && truncates > 0, `seed ${seed}: reads ${reads}, truncates ${truncates}`);
  const gc = await cache.gc();
  assert.equal(gc.deleted, 0, `seed ${seed}: gc found orphans`);
  for (const id of ids) await cache.close(id);
  assert.deepEqual(await cold.list(SESSIONS_PREFIX), [], `seed ${seed}: objects left after closing every session`);
  assert.equal((await cache.stats()).hotBytes, 0);
  t.diagnostic(
    `seed ${seed}: appended ${appended} bytes (${(appended / budgetBytes).toFixed(1)}x the budget), ${reads} reads, ${truncates} truncates, max hot ${maxHot}/${budgetBytes}, swaps in ${stats.swapsIn} out ${stats.swapsOut}, hits ${stats.hits} misses ${stats.misses}`,
  );
}

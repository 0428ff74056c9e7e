// sessions suite (issue 13, section 4): the session KV cache on memory metadata and a file:// cold tier (a
// temporary directory), against baselines measured in the same run.
// - Swap-in of a 64 MiB session (one entry): `swapIn` after `swapOut` against a plain `readInto` of the same
//   object through the same connector into a preallocated buffer. Target >= 0.8x.
// - Hot read of the 64 MiB session into a caller's buffer against `Buffer.copy` of the same bytes. Target >= 0.7x.
// - A multi-turn trace (Zipf popularity; each turn reads its session's whole prefix, then appends KV) at hot
//   budgets of 10%, 25% and 50% of the working set: the cache's hit ratio on prefix reads against Belady's
//   MIN computed offline on the same trace (ratio = ours / MIN), and bytes swapped in per byte served.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createConnector } from '../src/connectors/create-connector.js';
import type { SessionGeometry } from '../src/sessions/geometry.js';
import { MemorySessionMetaStore } from '../src/sessions/meta/memory-session-meta-store.js';
import { createSessionCache } from '../src/sessions/session-cache.js';
import { result, type BenchResult } from './measure.js';
import { makeTrace, simulate, workingSet, type TraceOptions } from './session-trace.js';

const MiB = 1024 * 1024;
const SUITE = 'sessions';
/** Llama-3-8B's KV in BF16: 128 KiB per token, 512 tokens = 64 MiB. */
const LLAMA: SessionGeometry = {
  modelId: 'meta-llama/Llama-3.1-8B',
  layers: 32,
  kvHeads: 8,
  headDim: 128,
  dtype: 'BF16',
  tokensPerPage: 16,
};
const BIG_TOKENS = 512;
/** 1 KiB per token for the trace (its policy figures do not depend on the token size). */
const SMALL: SessionGeometry = { modelId: 'bench-small', layers: 1, kvHeads: 1, headDim: 256, dtype: 'BF16', tokensPerPage: 16 };
const TRACE: TraceOptions = { sessions: 100, turns: 1200, zipf: 0.9, minTokens: 16, maxTokens: 128, bytesPerToken: 1024, seed: 13 };

/**
 * Best times in seconds of `ours` and `baseline`, run alternately `repeats` times after one warm-up each.
 * `ours` may answer the milliseconds to count (when it has untimed preparation), else it is timed whole.
 */
async function interleavedBest(repeats: number, ours: () => unknown, baseline: () => unknown): Promise<[number, number]> {
  const time = async (fn: () => unknown): Promise<number> => {
    const t = performance.now();
    const r = await fn();
    return typeof r === 'number' ? r : performance.now() - t;
  };
  await time(ours);
  await time(baseline);
  let a = Number.POSITIVE_INFINITY;
  let b = Number.POSITIVE_INFINITY;
  for (let i = 0; i < repeats; i++) {
    a = Math.min(a, await time(ours));
    b = Math.min(b, await time(baseline));
  }
  return [a / 1000, b / 1000];
}

function withTarget(r: BenchResult, min: number): BenchResult {
  return { ...r, target: `ratio >= ${min}`, met: r.ratio >= min };
}

/** Swap-in and hot read of one 64 MiB session. */
async function bigSession(dir: string, repeats: number): Promise<BenchResult[]> {
  const coldUrl = pathToFileURL(join(dir, 'big')).href;
  const cold = await createConnector(coldUrl);
  const cache = await createSessionCache({ hot: { budgetBytes: 256 * MiB }, cold, meta: new MemorySessionMetaStore() });
  try {
    const bytes = BIG_TOKENS * 128 * 1024;
    const kv = Buffer.allocUnsafe(bytes);
    for (let i = 0; i < bytes; i += 4) kv.writeUInt32LE((i * 2654435761) >>> 0, i);
    await cache.create({ sessionId: 'big', geometry: LLAMA });
    await cache.append('big', 0, kv);
    const [object] = await cold.list('sessions/');
    // Runs of ~10-20 ms each: more of them than the suite's repeats, for a steadier best on a busy machine.
    const runs = Math.max(repeats, 20);
    const dest = Buffer.allocUnsafe(bytes);
    // Each side's runs alternate with the other's, so that the load of a shared machine falls on both alike.
    const [swap, plain] = await interleavedBest(
      runs,
      async () => {
        await cache.swapOut('big');
        const t = performance.now();
        await cache.swapIn('big');
        return performance.now() - t;
      },
      () => cold.readInto(object!.key, 0, dest),
    );
    const into = Buffer.allocUnsafe(bytes);
    const src = Buffer.from(kv);
    const [read, copy] = await interleavedBest(
      runs,
      () => cache.read('big', { tokenStart: 0, tokenEnd: BIG_TOKENS }, { into }),
      () => {
        src.copy(into);
      },
    );
    if (!into.equals(kv)) throw new Error('sessions bench: the hot read returned other bytes');
    return [
      withTarget(result(SUITE, 'swap-in 64 MiB (file://)', 'cache.swapIn', 'connector.readInto', bytes, swap, plain), 0.8),
      withTarget(result(SUITE, 'hot read 64 MiB', 'cache.read into', 'Buffer.copy', bytes, read, copy), 0.7),
    ];
  } finally {
    await cache.shutdown();
    await cold.close();
  }
}

/** The trace on the real cache at one budget; the offline LRU and MIN on the same trace. */
async function traceAt(dir: string, fraction: number): Promise<BenchResult> {
  const trace = makeTrace(TRACE);
  const budgetBytes = Math.floor(workingSet(trace) * fraction);
  const coldUrl = pathToFileURL(join(dir, `trace-${fraction}`)).href;
  const cache = await createSessionCache({ hot: { budgetBytes }, cold: coldUrl, meta: 'memory' });
  let reads = 0;
  let hits = 0;
  let served = 0;
  try {
    const tokens = new Array<number>(TRACE.sessions).fill(0);
    for (let s = 0; s < TRACE.sessions; s++) await cache.create({ sessionId: `s${s}`, geometry: SMALL });
    const kv = Buffer.alloc(TRACE.maxTokens * TRACE.bytesPerToken, 7);
    for (const turn of trace) {
      const id = `s${turn.session}`;
      if (turn.prefixBytes > 0) {
        const into = Buffer.allocUnsafe(turn.prefixBytes);
        const r = await cache.read(id, { tokenStart: 0, tokenEnd: tokens[turn.session]! }, { into });
        reads++;
        served += r.bytes;
        if (r.hit) hits++;
      }
      await cache.append(id, tokens[turn.session]!, kv.subarray(0, turn.appendBytes));
      tokens[turn.session]! += turn.appendBytes / TRACE.bytesPerToken;
    }
    const stats = await cache.stats();
    const lru = simulate(trace, budgetBytes, 'lru');
    const min = simulate(trace, budgetBytes, 'min');
    const ours = hits / reads;
    const best = min.hits / min.reads;
    const pct = `${Math.round(fraction * 100)}%`;
    return {
      suite: SUITE,
      case: `trace hit ratio, budget ${pct} of working set`,
      ours: 'cache LRU',
      baseline: 'Belady MIN (offline)',
      oursRate: ours,
      baselineRate: best,
      ratio: ours / best,
      unit: 'hit ratio',
      bytes: served,
      note:
        `swapped/served: cache ${(stats.swapInBytes / served).toFixed(3)}, MIN ${(min.swapInBytes / min.servedBytes).toFixed(3)}; ` +
        `offline LRU hit ratio ${(lru.hits / lru.reads).toFixed(3)}; ${reads} reads, ${trace.length} turns, working set ${(workingSet(trace) / MiB).toFixed(0)} MiB`,
    };
  } finally {
    await cache.shutdown();
  }
}

/** The sessions suite. */
export async function sessionsSuite(repeats: number): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tc-bench-sessions-'));
  try {
    const out = await bigSession(dir, repeats);
    for (const fraction of [0.1, 0.25, 0.5]) out.push(await traceAt(dir, fraction));
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

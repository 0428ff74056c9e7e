// handshake suite (issue 12, section 5): the handshake service over loopback against a plain HTTP GET of the
// same size from a minimal node:http server in the same run, both through undici with keep-alive.
// - Latency p50 / p99 of one handshake for a 64 KiB agent blob: SDK get() with the engine's cache dropped
//   before each call, so every call is a real GET (bearer token, fastify, memory store) plus the hash check
//   and the msgpack decode; against a GET of 64 KiB from the plain server. Ratio = baseline / ours latency.
// - Handshakes per second under 64 concurrent readers (64 distinct engines, each reader dropping its engine's
//   cache before each get), against plain GETs per second with 64 concurrent loops.
// Ours and the baseline alternate run by run; latencies are pooled over all runs after a warm-up.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { handshakes, type HandshakeClient } from '../src/handshake/client/index.js';
import type { RankMetadata } from '../src/handshake/rank-metadata.js';
import { startHandshakeServer } from '../src/handshake/server/index.js';
import { MemoryHandshakeStore } from '../src/handshake/store/memory-handshake-store.js';
import type { BenchResult } from './measure.js';

const BLOB_BYTES = 64 * 1024;
const LATENCY_OPS = 2000;
const READERS = 64;
const OPS_PER_READER = 100;
const TOKEN = 'bench-token';

function rank(engineId: string, blob: Uint8Array): RankMetadata {
  return {
    engineId,
    tpRank: 0,
    dpRank: 0,
    compatibilityHash: 'bench-hash',
    incarnation: 'inc-1',
    agentMetadata: blob,
    kvCachesBaseAddr: [0x7f00_0000_0000n],
    blockLens: [32768],
    blockStrides: [32768],
    numBlocks: 4096,
    blockSize: 16,
    kvCacheLayout: 'HND',
    tpSize: 1,
    deviceId: 0,
  };
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

/** The suite. */
export async function handshakeSuite(repeats: number): Promise<BenchResult[]> {
  const store = new MemoryHandshakeStore();
  // A TTL longer than any run: the bench measures reads, not renewals.
  const server = await startHandshakeServer({ host: '127.0.0.1', port: 0, store, token: TOKEN, ttlMs: 24 * 3600_000 });
  const body = randomBytes(BLOB_BYTES);
  const plain = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.byteLength });
    res.end(body);
  });
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/blob`;
  // The baseline's agent is set up as the SDK's is (keep-alive, no undici timeouts).
  const agent = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
  const hs: HandshakeClient = handshakes({ url: server.url, token: TOKEN, expectHash: 'bench-hash', failurePolicy: 'fail' });
  try {
    const engines = Array.from({ length: READERS }, (_, i) => `bench-engine-${i}`);
    for (const id of engines) await hs.publish(rank(id, randomBytes(BLOB_BYTES)));

    const oursOnce = async (engineId: string): Promise<void> => {
      hs.invalidate(engineId);
      const meta = await hs.get(engineId, { tpRank: 0, dpRank: 0 });
      if (meta.agentMetadata.byteLength !== BLOB_BYTES) throw new Error('bench: wrong blob size');
    };
    const plainOnce = async (): Promise<void> => {
      const res = await request(plainUrl, { dispatcher: agent });
      const got = await res.body.arrayBuffer();
      if (got.byteLength !== BLOB_BYTES) throw new Error('bench: wrong plain size');
    };
    const timed = async (n: number, fn: () => Promise<void>, into: number[]): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await fn();
        into.push(performance.now() - t);
      }
    };
    // Warm-up: connections, JIT.
    await timed(1000, () => oursOnce(engines[0]!), []);
    await timed(1000, plainOnce, []);
    const ours: number[] = [];
    const base: number[] = [];
    for (let r = 0; r < repeats; r++) {
      await timed(LATENCY_OPS, () => oursOnce(engines[0]!), ours);
      await timed(LATENCY_OPS, plainOnce, base);
    }
    ours.sort((a, b) => a - b);
    base.sort((a, b) => a - b);
    const results: BenchResult[] = [];
    for (const [label, p] of [
      ['p50', 0.5],
      ['p99', 0.99],
    ] as const) {
      const o = percentile(ours, p);
      const b = percentile(base, p);
      results.push({
        suite: 'handshake',
        case: `latency ${label}, 64 KiB agent blob`,
        ours: 'sdk get (cache dropped)',
        baseline: 'plain http GET 64 KiB',
        oursRate: 1000 / o,
        baselineRate: 1000 / b,
        ratio: b / o,
        unit: '1/s',
        note: `${label} ${(o * 1000).toFixed(0)} us vs ${(b * 1000).toFixed(0)} us over ${ours.length} calls each`,
      });
    }

    // Throughput: 64 concurrent readers.
    const concurrent = async (fn: (i: number) => Promise<void>): Promise<number> => {
      const t = performance.now();
      await Promise.all(
        Array.from({ length: READERS }, async (_, i) => {
          for (let k = 0; k < OPS_PER_READER; k++) await fn(i);
        }),
      );
      return (READERS * OPS_PER_READER) / ((performance.now() - t) / 1000);
    };
    await concurrent((i) => oursOnce(engines[i]!));
    await concurrent(() => plainOnce());
    let oursBest = 0;
    let baseBest = 0;
    for (let r = 0; r < repeats; r++) {
      oursBest = Math.max(oursBest, await concurrent((i) => oursOnce(engines[i]!)));
      baseBest = Math.max(baseBest, await concurrent(() => plainOnce()));
    }
    const stats = hs.stats();
    results.push({
      suite: 'handshake',
      case: `${READERS} concurrent readers, 64 KiB blob`,
      ours: 'handshakes/s (64 engines)',
      baseline: 'plain GETs/s (64 loops)',
      oursRate: oursBest,
      baselineRate: baseBest,
      ratio: oursBest / baseBest,
      unit: 'ops/s',
      note: `single flight held: max ${stats.maxInFlightPerEngine} handshake in flight per engine over ${stats.handshakesStarted} handshakes`,
    });
    return results;
  } finally {
    await hs.close();
    await agent.close();
    await server.close();
    await store.close();
    await new Promise<void>((resolve) => plain.close(() => resolve()));
  }
}

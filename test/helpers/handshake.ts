// Shared by the handshake tests: rank metadata to publish, and an in-process listener with a memory store.

import { createHash, randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import type { RankMetadata } from '../../src/handshake/rank-metadata.js';
import { startHandshakeServer, type HandshakeServer, type HandshakeServerOptions } from '../../src/handshake/server/index.js';
import { MemoryHandshakeStore } from '../../src/handshake/store/memory-handshake-store.js';

/** One rank's metadata with sensible geometry; `blob` defaults to 1 KiB of random bytes. */
export function rankMeta(
  engineId: string,
  tpRank: number,
  dpRank: number,
  o: { incarnation?: string; hash?: string; tpSize?: number; blob?: Uint8Array } = {},
): RankMetadata {
  return {
    engineId,
    tpRank,
    dpRank,
    compatibilityHash: o.hash ?? 'hash-a',
    incarnation: o.incarnation ?? 'inc-1',
    agentMetadata: o.blob ?? randomBytes(1024),
    kvCachesBaseAddr: [0x7f00_0000_0000n + BigInt(tpRank) * 0x1_0000_0000n, 0xffff_ffff_ffff_fff0n],
    blockLens: [16384, 16384],
    blockStrides: [16384, 16384],
    numBlocks: 1000,
    blockSize: 16,
    kvCacheLayout: 'HND',
    tpSize: o.tpSize ?? Math.max(tpRank + 1, 4),
    deviceId: tpRank,
  };
}

/** sha256 hex of bytes (the fleet test compares blobs by it). */
export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A listener on 127.0.0.1 with a fresh memory store, closed after the test. */
export async function memoryListener(
  t: TestContext,
  options: Partial<HandshakeServerOptions> = {},
): Promise<HandshakeServer & { store: MemoryHandshakeStore }> {
  const store = new MemoryHandshakeStore();
  const server = await startHandshakeServer({ host: '127.0.0.1', port: 0, store, ...options });
  t.after(() => server.close());
  return Object.assign(server, { store });
}

/** Polls `check` every 20 ms until it returns true; fails after `deadlineMs` (generous: no timing is asserted). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, deadlineMs = 30_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

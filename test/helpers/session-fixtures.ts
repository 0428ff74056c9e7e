// Shared fixtures of the session cache tests: a small geometry, deterministic KV bytes, a cache on a temporary
// directory.

import type { TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createSessionCache, type SessionCache, type SessionCacheOptions } from '../../src/sessions/session-cache.js';
import type { SessionGeometry } from '../../src/sessions/geometry.js';
import { tempDir } from './tmp.js';

/** 2 layers x K,V x 1 head x 4 dims x F16: 32 bytes per token. */
export const GEOMETRY: SessionGeometry = { modelId: 'tiny', layers: 2, kvHeads: 1, headDim: 4, dtype: 'F16', tokensPerPage: 16 };
export const BPT = 32;

/** Deterministic KV of `tokens` tokens for `seed`. */
export function kvBytes(tokens: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(tokens * BPT);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A file:// URL of a fresh temporary directory. */
export const coldDirUrl = (t: TestContext): string => pathToFileURL(tempDir(t, 'tc-sessions-')).href;

/** A cache (memory metadata, file:// cold unless given), shut down after `t`. */
export async function openCache(t: TestContext, options: Partial<SessionCacheOptions> = {}): Promise<SessionCache> {
  const cache = await createSessionCache({
    hot: { budgetBytes: 64 * BPT },
    cold: coldDirUrl(t),
    meta: 'memory',
    ...options,
  });
  t.after(() => cache.shutdown());
  return cache;
}

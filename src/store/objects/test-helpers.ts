// Helpers of the object store tests: put bytes in one go, read an object whole.

import { silentLogger } from '../../core/logger.js';
import { ObjectStore, type ObjectStoreOptions } from './object-store.js';
import type { PutRequest } from './object-store-api.js';

/** A far deadline (tests never time anything). */
export const LATER = Date.now() + 3_600_000;

/** A store with a silent log; the sweep timer effectively off (tests call sweep()). */
export async function openStore(options: Partial<ObjectStoreOptions> & { memoryBytes: number }): Promise<ObjectStore> {
  const store = new ObjectStore({ log: silentLogger, sweepMs: 3_600_000, ...options });
  await store.init();
  return store;
}

/** Puts `bytes` under `key` (written in chunks of `chunk` bytes through target/write); resolves with the version. */
export async function putBytes(
  store: ObjectStore,
  key: string,
  bytes: Uint8Array,
  extra: Partial<PutRequest> = {},
  chunk = 7,
): Promise<number> {
  const put = await store.beginPut({ key, size: bytes.length, deadline: LATER, ...extra });
  for (let at = 0; at < bytes.length; at += chunk) {
    const piece = bytes.subarray(at, Math.min(bytes.length, at + chunk));
    const target = put.target(at, piece.length);
    if (target !== undefined) target.set(piece);
    else await put.write(at, piece);
  }
  return (await put.finish()).version;
}

/** Reads object `key` whole, chunk by chunk. */
export async function readBytes(store: ObjectStore, key: string, storeToken?: string, chunk = 5): Promise<Buffer> {
  const lease = store.openRead(key, storeToken, LATER);
  try {
    const out = Buffer.alloc(lease.size);
    for (let at = 0; at < lease.size; at += chunk) {
      const got = await lease.chunk(at, Math.min(chunk, lease.size - at));
      out.set(got, at);
      lease.done();
    }
    return out;
  } finally {
    lease.release();
  }
}

/** `n` bytes of a pattern seeded by `seed`. */
export function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 17 + 3) & 0xff;
  return b;
}

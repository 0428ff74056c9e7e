// Content hashing: SHA-256 helpers and the tree hash over fixed-size leaves that identifies artifact bytes.
// Leaves are hashed independently (in parallel, on the libuv pool through WebCrypto), and any leaf-aligned
// byte range can later be verified against the stored leaf hashes.

import { createHash, webcrypto } from 'node:crypto';

/** Leaf size of the content tree: 4 MiB. */
export const TREE_LEAF_BYTES = 4 * 1024 * 1024;

/** SHA-256 of `data` as lowercase hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** SHA-256 of one leaf, computed off the main thread. */
export async function hashLeaf(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await webcrypto.subtle.digest('SHA-256', data));
}

/**
 * Root of the content tree over `leafHashes` for `totalBytes` bytes. Inner node = SHA-256(0x01 || L || R);
 * an odd node is promoted; the root binds the byte length: SHA-256(0x02 || u64le(totalBytes) || top).
 */
export function treeRoot(leafHashes: readonly Uint8Array[], totalBytes: number): string {
  let level: Uint8Array[] = leafHashes.length === 0 ? [createHash('sha256').digest()] : [...leafHashes];
  const one = Buffer.from([1]);
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const right = level[i + 1];
      next.push(right === undefined ? level[i]! : createHash('sha256').update(one).update(level[i]!).update(right).digest());
    }
    level = next;
  }
  const len = Buffer.alloc(9);
  len[0] = 2;
  len.writeBigUInt64LE(BigInt(totalBytes), 1);
  return createHash('sha256').update(len).update(level[0]!).digest('hex');
}

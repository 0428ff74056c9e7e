// Artifact identity: artifact_id = SHA-256 over the canonical index hash and the content tree root of the
// canonical bytes. Leaves (4 MiB) are read and hashed with bounded concurrency; the leaf hashes are kept so
// any leaf-aligned byte range can be verified later without rehashing the rest.

import { hashLeaf, sha256Hex, TREE_LEAF_BYTES, treeRoot } from '../core/hashing.js';
import type { CanonicalIndex } from '../layout/canonical-index.js';
import { readExactly, type ByteSource } from './byte-source.js';

/** The identity of an artifact. */
export interface ArtifactIdentity {
  /** `tc1:` + 64 hex digits. */
  readonly artifactId: string;
  readonly indexHash: string;
  /** Root of the content tree over the canonical bytes. */
  readonly dataHash: string;
  readonly leafBytes: number;
  readonly leafHashes: readonly Uint8Array[];
}

/** The artifact id from an index hash and a data hash. */
export function artifactIdOf(indexHash: string, dataHash: string): string {
  return `tc1:${sha256Hex(`tensorcast-artifact-v1\n${indexHash}\n${dataHash}`)}`;
}

/**
 * Hashes the canonical bytes of `index` read from `source` and returns the artifact's identity.
 *
 * @throws TC_ERR_SHORT_READ, TC_ERR_IO
 * @example const { artifactId } = await computeArtifactIdentity(index, source);
 */
export async function computeArtifactIdentity(
  index: CanonicalIndex,
  source: ByteSource,
  options: { concurrency?: number; onProgress?: (doneBytes: number, totalBytes: number) => void } = {},
): Promise<ArtifactIdentity> {
  const total = index.totalBytes;
  const leafCount = Math.ceil(total / TREE_LEAF_BYTES);
  const leafHashes = new Array<Uint8Array>(leafCount);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    const buf = Buffer.allocUnsafeSlow(Math.min(TREE_LEAF_BYTES, Math.max(total, 1)));
    while (next < leafCount) {
      const i = next++;
      const start = i * TREE_LEAF_BYTES;
      const leaf = buf.subarray(0, Math.min(TREE_LEAF_BYTES, total - start));
      const direct = source.direct?.(start, leaf.length);
      if (direct !== undefined) leafHashes[i] = await hashLeaf(direct);
      else {
        await readExactly(source, start, leaf);
        leafHashes[i] = await hashLeaf(leaf);
      }
      done += leaf.length;
      options.onProgress?.(done, total);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 4, Math.max(leafCount, 1)) }, worker));
  const dataHash = treeRoot(leafHashes, total);
  return {
    artifactId: artifactIdOf(index.indexHash, dataHash),
    indexHash: index.indexHash,
    dataHash,
    leafBytes: TREE_LEAF_BYTES,
    leafHashes,
  };
}

// Verifies an artifact by hashing all its canonical bytes: a stored artifact's files must still give its id;
// a lazy artifact's objects (streamed from its connector through the hasher, each read pinned to the etag
// recorded at import) give its content id, which is recorded in its descriptor as a property. A lazy id
// is never rebound to the content id: keys stay where they are.

import { computeArtifactIdentity, hashExtraFiles } from '../bytes/artifact-id.js';
import type { Progress } from '../protocol/http/progress.js';
import type { StoredArtifact } from './artifact-store.js';
import { rewriteLazyRecord, type LazyVerification } from './lazy-record.js';

/** What a verification found. */
export interface VerifyResult {
  readonly artifactId: string;
  readonly lazy: boolean;
  /** The content id (`tc1:...`) of the bytes hashed. */
  readonly contentId: string;
  readonly dataHash: string;
  readonly totalBytes: number;
  /** Stored artifacts: whether the content id is the artifact id. Lazy ones: null (their ids differ by design). */
  readonly matches: boolean | null;
}

/**
 * Hashes `a` in full. For a lazy artifact, records the verification in its descriptor.
 *
 * @throws TC_ERR_SOURCE_CHANGED (a lazy artifact's object rewritten since import); TC_ERR_SHORT_READ;
 *   TC_ERR_IO; the connector's TC_ERR_AUTH, TC_ERR_BACKEND
 */
export async function verifyArtifact(a: StoredArtifact, onProgress?: (p: Progress) => void): Promise<VerifyResult> {
  const files = await hashExtraFiles(a.dir, a.files);
  const total = a.index.totalBytes;
  onProgress?.({ phase: 'hash', doneBytes: 0, totalBytes: total });
  const identity = await computeArtifactIdentity(a.index, a.source, {
    filesHash: files.filesHash,
    concurrency: a.lazy === undefined ? 4 : 16,
    onProgress: (doneBytes, totalBytes) => onProgress?.({ phase: 'hash', doneBytes, totalBytes }),
  });
  if (a.lazy !== undefined) {
    const verified: LazyVerification = { contentId: identity.artifactId, dataHash: identity.dataHash, verifiedAt: Date.now() };
    await rewriteLazyRecord(a.dir, { ...a.lazy, verified });
  }
  return {
    artifactId: a.artifactId,
    lazy: a.lazy !== undefined,
    contentId: identity.artifactId,
    dataHash: identity.dataHash,
    totalBytes: total,
    matches: a.lazy === undefined ? identity.artifactId === a.artifactId : null,
  };
}

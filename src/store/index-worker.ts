// The body of an index worker thread (started by IndexJobs, one per job): parses and validates safetensors
// headers, builds the canonical index and hashes an artifact away from the daemon's event loop. Answers
// with messages of IndexWorkerMessage; large results travel as strings or in chunks.

import { parentPort, workerData } from 'node:worker_threads';
import { computeArtifactIdentity, hashExtraFiles } from '../bytes/artifact-id.js';
import { FileSource } from '../bytes/file-source.js';
import { TensorcastError } from '../core/errors.js';
import { openModelFiles } from '../format/model-files.js';
import { identityJson, indexModelFiles, type CanonicalIndex } from '../layout/canonical-index.js';
import type { IndexJob, IndexWorkerMessage } from './index-jobs.js';

/** Tensors per message of an 'index' job: bounds the time the daemon spends on one message (~10 ms). */
const CHUNK_TENSORS = 4096;

const post = (m: IndexWorkerMessage): void => parentPort!.postMessage(m);

async function run(job: IndexJob): Promise<void> {
  const model = await openModelFiles(job.path);
  const index = indexModelFiles(model);
  if (job.kind === 'index') {
    for (let i = 0; i < index.tensors.length; i += CHUNK_TENSORS) {
      post({ type: 'tensors', tensors: index.tensors.slice(i, i + CHUNK_TENSORS) });
      // Wait for the daemon to take the chunk: a port delivers every queued message in one go, which
      // would rebuild the whole index in one turn of the event loop.
      await new Promise((resolve) => parentPort!.once('message', resolve));
    }
    post({ type: 'index', shards: [...index.shards], totalBytes: index.totalBytes, indexHash: index.indexHash, metadata: index.metadata });
    return;
  }
  const extra = await hashExtraFiles(model.root, model.extraFiles);
  const source = FileSource.fromIndex(model.root, index);
  try {
    const identity = await computeArtifactIdentity(index, source, { filesHash: extra.filesHash });
    post({
      type: 'identify',
      artifactId: identity.artifactId,
      indexHash: identity.indexHash,
      dataHash: identity.dataHash,
      totalBytes: index.totalBytes,
      tensorCount: index.tensors.length,
      indexJson: serializeIndex(index),
      files: [...extra.files],
      skippedFiles: [...extra.skipped],
      shards: model.shards.map((s) => ({ file: s.file, fileByteLength: s.fileByteLength, dataStart: s.header.dataStart })),
    });
  } finally {
    await source.close();
  }
}

/** The canonical index as the catalog and clients see it: identity rows plus metadata. */
export function serializeIndex(index: CanonicalIndex): string {
  const identity = identityJson(index.tensors);
  return `${identity.slice(0, -1)},"metadata":${JSON.stringify(index.metadata)}}`;
}

if (parentPort !== null) {
  run(workerData as IndexJob).catch((error: unknown) => {
    const e = error instanceof TensorcastError ? error : undefined;
    post({
      type: 'error',
      code: e?.code ?? 'TC_ERR_INTERNAL',
      message: e?.message ?? `index worker: ${(error as Error | undefined)?.message ?? String(error)}`,
      details: { ...(e?.details ?? {}) },
    });
  });
}

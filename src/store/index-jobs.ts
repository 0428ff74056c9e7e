// Runs header parsing, canonical indexing and identity hashing in worker threads (index-worker.ts), so a
// model with a huge header (1e6 tensors take seconds to index) never stalls the daemon's event loop. One
// worker per job: a long hash never queues an open behind it. Owned by the ArtifactStore, closed with it.

import type { ArtifactRecord } from '../catalog/catalog.js';
import { Worker } from 'node:worker_threads';
import { errorFromWire, tcError, type ErrorDetails } from '../core/errors.js';
import type { CanonicalIndex, CanonicalShard, CanonicalTensor } from '../layout/canonical-index.js';

/** What a worker is asked to do with the model at `path`. */
export type IndexJob =
  /** Validate, index and hash (weights and kept files). */
  | { readonly kind: 'identify'; readonly path: string }
  /** Validate and index (opening a stored artifact). */
  | { readonly kind: 'index'; readonly path: string };

/** A shard of a hashed model: where its tensor data starts (everything before is the header). */
export interface IdentifiedShard {
  readonly file: string;
  readonly fileByteLength: number;
  readonly dataStart: number;
}

/** The identity of a model directory and what the catalog stores about it (all but the creation time). */
export interface IdentifyResult extends Omit<ArtifactRecord, 'createdAt'> {
  /** Non-weight files too large to keep (not covered by the id). */
  readonly skippedFiles: readonly string[];
  readonly shards: readonly IdentifiedShard[];
}

/** Messages from a worker. */
export type IndexWorkerMessage =
  | ({ readonly type: 'identify' } & IdentifyResult)
  | { readonly type: 'tensors'; readonly tensors: CanonicalTensor[] }
  | {
      readonly type: 'index';
      readonly shards: CanonicalShard[];
      readonly totalBytes: number;
      readonly indexHash: string;
      readonly metadata: Readonly<Record<string, string>>;
    }
  | { readonly type: 'error'; readonly code: string; readonly message: string; readonly details: ErrorDetails };

/** Deadline of an 'identify' job (hashing a whole model): 6 hours. */
const IDENTIFY_TIMEOUT_MS = 6 * 3600_000;
/** Deadline of the other jobs (headers only): 10 minutes. */
const HEADER_TIMEOUT_MS = 10 * 60_000;

/**
 * Index jobs in worker threads.
 *
 * @example const { artifactId } = await jobs.identify('/data/artifacts/.staging-x');
 */
export class IndexJobs {
  private readonly workers = new Set<Worker>();
  private closed = false;

  /** Validates, indexes and hashes the model at `path`. @throws TC_ERR_NOT_FOUND, TC_ERR_FORMAT_*, TC_ERR_IO */
  async identify(path: string): Promise<IdentifyResult> {
    return this.run({ kind: 'identify', path }, 'identify');
  }

  /** Validates and indexes the model at `path`, rebuilt here a chunk per message. @throws TC_ERR_FORMAT_* */
  async index(path: string): Promise<CanonicalIndex> {
    const tensors: CanonicalTensor[] = [];
    const byName = new Map<string, CanonicalTensor>();
    const end = await this.run({ kind: 'index', path }, 'index', (m) => {
      if (m.type !== 'tensors') return;
      for (const t of m.tensors) {
        tensors.push(t);
        byName.set(t.name, t);
      }
      return 'next';
    });
    return { tensors, byName, shards: end.shards, totalBytes: end.totalBytes, indexHash: end.indexHash, metadata: end.metadata };
  }

  private run<T extends IndexWorkerMessage['type']>(
    job: IndexJob,
    answer: T,
    /** Takes a partial answer; returning 'next' asks the worker for the next one after this turn. */
    onPart?: (m: IndexWorkerMessage) => 'next' | undefined,
  ): Promise<Extract<IndexWorkerMessage, { type: T }>> {
    if (this.closed) return Promise.reject(tcError('TC_ERR_SHUTTING_DOWN', 'the artifact store is closed'));
    const worker = new Worker(new URL('./index-worker.js', import.meta.url), { workerData: job });
    this.workers.add(worker);
    const timeoutMs = job.kind === 'identify' ? IDENTIFY_TIMEOUT_MS : HEADER_TIMEOUT_MS;
    return new Promise<Extract<IndexWorkerMessage, { type: T }>>((resolve, reject) => {
      let settled = false;
      const finish = (error: Error | undefined, value?: Extract<IndexWorkerMessage, { type: T }>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.workers.delete(worker);
        void worker.terminate();
        if (error === undefined) resolve(value!);
        else reject(error);
      };
      const timer = setTimeout(
        () => finish(tcError('TC_ERR_TIMEOUT', `indexing ${job.path} took longer than ${timeoutMs} ms`, { details: { path: job.path } })),
        timeoutMs,
      );
      timer.unref();
      worker.on('message', (m: IndexWorkerMessage) => {
        if (m.type === 'error') finish(errorFromWire(m.code, m.message, 'index worker failed', { details: m.details }));
        else if (m.type === answer) finish(undefined, m as Extract<IndexWorkerMessage, { type: T }>);
        else if (onPart?.(m) === 'next') setImmediate(() => worker.postMessage('next'));
      });
      worker.on('error', (error) => finish(tcError('TC_ERR_INTERNAL', `index worker crashed: ${error.message}`, { cause: error })));
      worker.on('exit', (code) => {
        const why = this.closed ? 'the artifact store was closed' : `index worker exited (code ${code}) without an answer`;
        finish(tcError(this.closed ? 'TC_ERR_SHUTTING_DOWN' : 'TC_ERR_INTERNAL', why));
      });
    });
  }

  /** Stops every running job (they fail with TC_ERR_SHUTTING_DOWN). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.workers].map((w) => w.terminate()));
    this.workers.clear();
  }
}

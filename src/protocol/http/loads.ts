// Contracts of the load routes: POST /v1/plans (the daemon resolves a key and a selection into the plan of
// a load in one round trip) and POST /v1/shm-leases (one answer, or a progressive NDJSON answer whose chunks
// can be read while the daemon writes the rest), DELETE /v1/shm-leases/:id (same-host hand-off).

import { z } from 'zod';
import type { ChunkChecksums } from '../../bytes/chunk-checksums.js';
import type { Dtype } from '../../core/dtypes.js';
import type { RouteKind } from '../route-kinds.js';
import type { ErrorBody } from './errors.js';

const viewSpec = z.record(z.string(), z.unknown());

/**
 * POST /v1/plans: what to load. Exactly one of `key` and `artifactId`; a selection of `tensors`, a
 * `view`, or a TP rank `tp` (with a rule set as data, default the built-in rules; docs/formats.md).
 */
export const planRequest = z
  .object({
    key: z.string().min(1).optional(),
    artifactId: z.string().min(1).max(256).optional(),
    tensors: z.array(z.string().max(1024)).max(1_000_000).optional(),
    view: viewSpec.optional(),
    tp: z
      .object({
        size: z
          .number()
          .int()
          .positive()
          .max(1 << 16),
        rank: z.number().int().nonnegative(),
        rules: z.unknown().optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((b) => (b.key === undefined) !== (b.artifactId === undefined), { message: 'give exactly one of key and artifactId' });
/** The body of POST /v1/plans. */
export type PlanRequest = z.infer<typeof planRequest>;

/** One tensor of a load's output: where it lies in the dense output buffer. */
export interface PlannedTensor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly byteLength: number;
}

/** The answer of POST /v1/plans: everything a client needs before the first byte moves. */
export interface PlanResponse {
  readonly artifactId: string;
  /** The key binding that was resolved, when a key was given. */
  readonly key: { readonly key: string; readonly version: number } | null;
  /** The normalized view spec to send with LOAD (null: the whole artifact) and its id. */
  readonly view: Record<string, unknown> | null;
  readonly viewId: string | null;
  readonly totalBytes: number;
  readonly tensors: readonly PlannedTensor[];
  /** The artifact's safetensors `__metadata__`. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Non-weight files kept with the artifact (config.json, tokenizer files). */
  readonly files: readonly string[];
}

/** POST /v1/shm-leases: materialize a planned view into shared memory and lease it. */
export const shmLeaseRequest = z
  .object({
    artifactId: z.string().min(1).max(256),
    view: viewSpec.nullable(),
    viewId: z.string().max(256).nullable(),
    /** How long the daemon may wait for room or a build (ms; default 30 s). */
    timeoutMs: z
      .number()
      .int()
      .positive()
      .max(2 ** 31 - 1)
      .optional(),
  })
  .strict();
/** The body of POST /v1/shm-leases. */
export type ShmLeaseRequest = z.infer<typeof shmLeaseRequest>;

/** The answer of POST /v1/shm-leases (docs/protocol.md, same-host hand-off). */
export interface ShmLeaseResponse {
  readonly leaseId: string;
  /** The file on tmpfs holding the view's bytes; read or map `[0, bytes)`. */
  readonly path: string;
  readonly bytes: number;
  /** Unix milliseconds. */
  readonly expiresAt: number;
  /** CRC32C per chunk of the file's bytes: the client checks what it reads against them. */
  readonly checksums: ChunkChecksums;
  readonly route: RouteKind;
  readonly source: string;
  readonly viewId: string | null;
  readonly totalBytes: number;
}

/**
 * First line of a progressive lease answer (POST /v1/shm-leases with `accept: application/x-ndjson`), sent
 * once the file exists, before its bytes are all there: `ready` lines follow as chunks are written, then the
 * closing `result` (the whole {@link ShmLeaseResponse}) or an error line. A lease on a held replica (or one
 * joined while another request builds it) is answered with the closing line alone.
 */
export interface ShmLeaseOpening {
  readonly leaseId: string;
  readonly path: string;
  readonly bytes: number;
  /** Unix milliseconds. */
  readonly expiresAt: number;
  /** Bytes of one checksum chunk. */
  readonly chunkBytes: number;
}

/**
 * Chunks `[firstChunk, firstChunk + crcs.length)` of the file are written, with these CRC32C: a client may
 * read and check them now. Chunks are announced in order, each once.
 */
export interface ShmLeaseReady {
  readonly firstChunk: number;
  readonly crcs: readonly number[];
}

/** One line of a progressive lease answer. */
export type ShmLeaseLine =
  { readonly opened: ShmLeaseOpening } | { readonly ready: ShmLeaseReady } | { readonly result: ShmLeaseResponse } | ErrorBody;

/** The path of a lease's route. */
export const leasePath = (leaseId: string): string => `/v1/shm-leases/${encodeURIComponent(leaseId)}`;

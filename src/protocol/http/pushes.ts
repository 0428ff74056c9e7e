// Contract of POST /v1/pushes: the daemon writes an artifact to a connector as a model directory (kept
// files, shards, and model.safetensors.index.json last). With `accept: application/x-ndjson`, a progress
// stream (progress.ts) ending in the PushResponse.

import { z } from 'zod';
import { connectorTuningFields } from './connector-tuning.js';

/**
 * POST /v1/pushes: exactly one of `key` and `artifactId`, the destination connector URL, and optional
 * connector tuning (`chunkBytes`, `concurrency`; see connector-tuning.ts).
 */
export const pushRequest = z
  .object({
    key: z.string().min(1).optional(),
    artifactId: z.string().min(1).max(256).optional(),
    url: z.string().min(1).max(8192),
    ...connectorTuningFields,
  })
  .strict()
  .refine((b) => (b.key === undefined) !== (b.artifactId === undefined), { message: 'give exactly one of key and artifactId' });
/** The body of POST /v1/pushes. */
export type PushRequest = z.infer<typeof pushRequest>;

/** What a push answers. */
export interface PushResponse {
  readonly artifactId: string;
  /** The destination URL, credentials redacted. */
  readonly destination: string;
  /** The objects written, in the order written (the index last). */
  readonly objects: readonly { readonly key: string; readonly bytes: number }[];
  readonly totalBytes: number;
}

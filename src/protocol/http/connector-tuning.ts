// The connector tuning a client may ask for when the daemon opens a connector on its behalf (push, import
// from a URL): the chunk size of stored objects (`--chunk-bytes`) and the ranged requests in flight
// (`--concurrency`). The bounds are shared by the CLI flags and the request bodies.

import { z } from 'zod';

/** The smallest `chunkBytes` a client may ask for: 1 MiB. */
export const MIN_TUNING_CHUNK_BYTES = 1024 * 1024;
/** `chunkBytes` must stay below this: 512 MiB, Redis' value limit. */
export const CHUNK_BYTES_LIMIT = 512 * 1024 * 1024;
/** The most `concurrency` a client may ask for. */
export const MAX_TUNING_CONCURRENCY = 256;

/** The tuning fields of a request body (both optional). */
export const connectorTuningFields = {
  chunkBytes: z
    .number()
    .int()
    .min(MIN_TUNING_CHUNK_BYTES)
    .max(CHUNK_BYTES_LIMIT - 1)
    .optional(),
  concurrency: z.number().int().min(1).max(MAX_TUNING_CONCURRENCY).optional(),
};

/** Connector tuning: Redis chunk size / S3 part size, and ranged requests in flight. */
export interface ConnectorTuning {
  readonly chunkBytes?: number;
  readonly concurrency?: number;
}
